"""Identifiers across nodes: a node asked for an id it does not hold (an image, file, dataset, model or
study of a peer) asks its peers, in parallel and within ``peer_timeout``, whether they resolve it for
anyone, and points there. A peer asked so answers from its own records only (the ``Fairimage-Forwarded``
header), so a question never travels further; answers are remembered for a while, and only a few
questions are asked at once, so unknown ids cannot make a node flood its peers."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

import httpx

from fairimage.catalog import federation as catalog
from fairimage.services.repository import Repository

FORWARDED = "Fairimage-Forwarded"
ID = re.compile(r"(study|img|file|ds|model)-[A-Za-z0-9_-]{4,64}(\.v[0-9]{1,9})?")
REMEMBER_SECONDS = 60.0
REMEMBERED = 10_000
AT_ONCE = 8  # lookups asking peers at the same time; more are answered "not found" at once


@dataclass
class _Recent:
    """What was asked lately: id -> (when it expires, the peer's base URL or None)."""

    found: dict[tuple[str, str], tuple[float, str | None]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    asking: threading.BoundedSemaphore = field(default_factory=lambda: threading.BoundedSemaphore(AT_ONCE))


_recent = _Recent()


def holder(repository: Repository, pid: str, path: str, headers: Mapping[str, str]) -> str | None:
    """The URL of ``path`` (``/pid/ID``, ``/ga4gh/drs/v1/objects/ID``) at the first peer that answers it
    for anyone, or None; always None for a question a peer forwarded (``headers`` of the request)."""
    if FORWARDED.lower() in {name.lower() for name in headers} or not ID.fullmatch(pid):
        return None
    key = (str(repository.settings.repo), pid)
    with _recent.lock:
        remembered = _recent.found.get(key)
    if remembered is not None and remembered[0] > time.monotonic():
        return None if remembered[1] is None else remembered[1] + path
    if not _recent.asking.acquire(blocking=False):
        return None
    try:
        base = _ask_peers(repository, path)
    finally:
        _recent.asking.release()
    with _recent.lock:
        if len(_recent.found) >= REMEMBERED:
            _recent.found.clear()
        _recent.found[key] = (time.monotonic() + REMEMBER_SECONDS, base)
    return None if base is None else base + path


def _ask_peers(repository: Repository, path: str) -> str | None:
    with repository.reading() as session:
        urls = [url for _, url in catalog.peer_addresses(session)]
    if not urls:
        return None
    client, timeout = repository.http_client(), repository.settings.peer_timeout

    def answers(url: str) -> bool:
        try:
            response = client.get(url + path, headers={FORWARDED: "1"}, timeout=timeout)
        except httpx.HTTPError:
            return False
        return response.status_code in (200, 303)

    with ThreadPoolExecutor(len(urls)) as pool:
        asked = {pool.submit(answers, url): url for url in urls}
        for done in as_completed(asked):
            if done.result():
                return asked[done]
    return None
