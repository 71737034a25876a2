"""Work the server repeats while it runs (fixity checks, harvesting and witnessing peers): a thread that
runs a task every so many hours. Several server processes (serve --workers N) share one schedule: the
process that holds its lock file runs it, the others leave it be."""

from __future__ import annotations

import fcntl
import logging
import threading
from collections.abc import Callable

from fairimage.model.errors import FairimageError
from fairimage.services.repository import Repository

_log = logging.getLogger("fairimage.schedule")


class Schedule:
    """Runs ``task`` every ``hours`` (the first time after one interval); a FairimageError it raises goes
    to the server's log and the schedule goes on."""

    def __init__(self, repository: Repository, name: str, hours: float, task: Callable[[], None]) -> None:
        self.name, self.hours, self.task = name, hours, task
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._lock = (repository.settings.repo / f".{name}-schedule.lock").open("a")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            return
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.hours * 3600):
            try:
                self.task()
            except FairimageError as exc:
                _log.error("scheduled %s failed: %s", self.name, exc.message)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._lock.close()
