"""Runs the ``fairimage`` command for the tests without paying its start-up each time.

The tests run the real command hundreds of times, and each start imports the same modules (about a second
here), which was most of the suite's time. The server below imports the command's modules once, then forks
a child for every run: the child is a process of its own, with the caller's arguments, environment, working
directory and stdin/stdout/stderr (passed over a Unix socket), that runs the console script's entry point
and exits as that script would (atexit handlers, exit code, signals); the server reports how it ended.

What a test sees is what the installed script gives: the same entry point, real file descriptors, a real
exit status. Only the import happened earlier. ``FAIRIMAGE_TESTS_SPAWN=1`` makes ``run_cli`` start the
script itself instead, to check that the two agree.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_LIMIT = 1 << 20  # the largest request (arguments and environment)


def serve(path: str, script: str) -> None:
    """Listen on ``path``; fork a child per request. Returns only in a child, ready to run the command."""
    sys.path[0] = str(Path(script).parent)  # as the console script's own sys.path would begin
    import fairimage.cli  # noqa: F401  (the cost paid once)

    # The command's own modules are imported again by each child, with its environment, as the script
    # would: they make the consoles, which read COLUMNS, NO_COLOR and the like when they are made. What
    # they import (the services, SQLAlchemy, zarr, numpy) stays imported.
    for name in [
        name for name in sys.modules if name == "fairimage.cli" or name.startswith("fairimage.cli.")
    ]:
        del sys.modules[name]

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(path)
    listener.listen(64)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    selector.register(wake_read, selectors.EVENT_READ)
    selector.register(sys.stdin, selectors.EVENT_READ)  # the test process holds it open: EOF, it is gone
    waiting: dict[int, socket.socket] = {}
    print("ready", flush=True)
    while True:
        for key, _ in selector.select():
            if key.fileobj is sys.stdin:
                if not sys.stdin.buffer.read1(1 << 16):
                    sys.exit(0)
            elif key.fileobj == wake_read:
                os.read(wake_read, 1 << 16)
                _reap(waiting)
            else:
                connection, _ = listener.accept()
                message, fds, _, _ = socket.recv_fds(connection, _LIMIT, 3)
                request = json.loads(message)
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    for fd in (listener, connection):
                        fd.close()
                    selector.close()
                    signal.set_wakeup_fd(-1)
                    os.close(wake_read)
                    os.close(wake_write)
                    _become(request, fds, script)
                    return
                for fd in fds:
                    os.close(fd)
                connection.send(f"{pid}".encode())
                waiting[pid] = connection
        _reap(waiting)  # as well: a wake-up byte is dropped when its pipe is full


def _reap(waiting: dict[int, socket.socket]) -> None:
    while waiting:
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            return
        connection = waiting.pop(pid, None)
        if connection is not None:
            connection.send(f"{os.waitstatus_to_exitcode(status)}".encode())
            connection.close()


def _become(request: dict[str, object], fds: list[int], script: str) -> None:
    """Turn this forked child into the process the caller asked for."""
    import random

    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(str(request["cwd"]))
    os.environ.clear()
    os.environ.update(dict(request["env"]))  # type: ignore[call-overload]
    sys.argv = [script, *request["args"]]  # type: ignore[misc]
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    random.seed()  # the parent's generator state would repeat in every child


class ForkServer:
    """A server process for the test process that starts it; ``run`` is ``subprocess.run`` for the CLI."""

    def __init__(self, script: str) -> None:
        self._folder = tempfile.mkdtemp(prefix="fairimage-fork-")
        self._path = os.path.join(self._folder, "socket")
        env = {k: v for k, v in os.environ.items() if not k.startswith("FAIRIMAGE_")}
        self._process = subprocess.Popen(
            [sys.executable, __file__, self._path, script],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            cwd=self._folder,
        )
        assert self._process.stdout is not None
        if self._process.stdout.readline() != b"ready\n":
            raise RuntimeError("the fork server did not start")

    def run(self, args: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
        stdin = os.open(os.devnull, os.O_RDONLY)
        out_read, out_write = os.pipe()
        err_read, err_write = os.pipe()
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as connection:
            connection.connect(self._path)
            request = {"args": args, "env": env, "cwd": os.getcwd()}
            socket.send_fds(connection, [json.dumps(request).encode()], [stdin, out_write, err_write])
            for fd in (stdin, out_write, err_write):
                os.close(fd)
            pid = int(connection.recv(64))
            try:
                stdout, stderr = _drain(out_read, err_read, time.monotonic() + timeout)
            except subprocess.TimeoutExpired:
                os.kill(pid, signal.SIGKILL)
                raise subprocess.TimeoutExpired(args, timeout) from None
            code = int(connection.recv(64))
        return subprocess.CompletedProcess(args, code, _text(stdout), _text(stderr))

    def close(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        self._process.wait(timeout=10)
        os.unlink(self._path)
        os.rmdir(self._folder)


def _drain(out_fd: int, err_fd: int, deadline: float) -> tuple[bytes, bytes]:
    """Everything written to the two pipes until every writer closed them."""
    chunks: dict[int, list[bytes]] = {out_fd: [], err_fd: []}
    try:
        with selectors.DefaultSelector() as selector:
            for fd in chunks:
                selector.register(fd, selectors.EVENT_READ)
            while selector.get_map():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise subprocess.TimeoutExpired([], 0)
                for key, _ in selector.select(left):
                    data = os.read(key.fd, 1 << 16)
                    if data:
                        chunks[key.fd].append(data)
                    else:
                        selector.unregister(key.fd)
    finally:
        for fd in chunks:
            os.close(fd)
    return b"".join(chunks[out_fd]), b"".join(chunks[err_fd])


def _text(data: bytes) -> str:
    """As ``subprocess.run(..., text=True)`` decodes (universal newlines)."""
    return data.decode().replace("\r\n", "\n").replace("\r", "\n")


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2])
    # Only a forked child gets here: it is now the `fairimage` command.
    from fairimage.cli import main

    main()
