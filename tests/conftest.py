"""Fixtures: repositories on real SQLite files or a real PostgreSQL, a real HTTP server, the real CLI."""

from __future__ import annotations

import atexit
import functools
import http.server
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from fairimage.api import create_app
from fairimage.services.repository import Repository, init_repository
from fairimage.settings import Settings, load_settings
from tests.forkserver import ForkServer

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
FAIRIMAGE = str(Path(sys.executable).with_name("fairimage"))


def run_cli(*args: str | Path, check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the installed ``fairimage`` command as a user would, with a clean FAIRIMAGE_* environment: a
    process of its own, forked from one that imported the command already (tests/forkserver.py)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAIRIMAGE_")}
    if os.environ.get("FAIRIMAGE_TESTS_SPAWN") == "1":
        result = subprocess.run(
            [FAIRIMAGE, *map(str, args)], capture_output=True, text=True, env=env, timeout=300
        )
    else:
        result = _fork_server().run(list(map(str, args)), env, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(
            f"fairimage {args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


@functools.cache
def _fork_server() -> ForkServer:
    server = ForkServer(FAIRIMAGE)
    atexit.register(server.close)
    return server


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The PostgreSQL database ``test`` at 127.0.0.1:5432; skips where none is reachable."""
    from sqlalchemy import create_engine, text

    engine = create_engine(POSTGRES)
    try:
        with engine.connect() as connection:
            connection.execute(text("select 1"))
    except Exception as exc:
        pytest.skip(f"no PostgreSQL at 127.0.0.1:5432 (user postgres, database test): {type(exc).__name__}")
    finally:
        engine.dispose()
    return POSTGRES


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A schema of its own for each test, dropped after it: nothing one test leaves is seen by the next."""
    from sqlalchemy import create_engine, text

    engine = create_engine(postgres_server)
    schema = f"fi_test_{secrets.token_hex(4)}"
    with engine.begin() as connection:
        connection.execute(text(f"create schema {schema}"))
    try:
        yield f"{postgres_server}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as connection:
            connection.execute(text(f"drop schema {schema} cascade"))
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each catalog test runs on a SQLite file and on PostgreSQL (in a schema of its own)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.sqlite'}"
        return
    yield request.getfixturevalue("postgres_url")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start(
    command: list[str], ready: Any, seconds: float, name: str, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start a server process and wait until ``ready()`` stops raising (or fail the tests, naming it)."""
    server = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + seconds
    while True:
        try:
            ready()
            return server
        except (OSError, httpx.HTTPError):
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise RuntimeError(f"{name} did not start") from None
            time.sleep(0.2)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3 API server (moto in server mode) on 127.0.0.1 at a random port, with test credentials in
    the environment, where fairimage (and the CLI it starts) finds them as it would find real ones."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = _start(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close(),
        30,
        "moto_server",
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ACCESS_KEY_ID", "fairimage-test")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "fairimage-test-secret")
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        yield url
    server.terminate()
    server.wait(timeout=10)


def new_bucket(s3_endpoint: str) -> str:
    """A new, empty bucket on the S3 server; returns its name."""
    import s3fs

    bucket = f"fairimage-{secrets.token_hex(6)}"
    s3fs.S3FileSystem(endpoint_url=s3_endpoint).mkdir(bucket)
    return bucket


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> str:
    return new_bucket(s3_endpoint)


def storage_settings(request: pytest.FixtureRequest, repo: Path, backend: str | None = None) -> Settings:
    """Settings for a repository whose objects live where ``backend`` (else ``request.param``) says:
    "local" or "s3"."""
    if (backend or request.param) == "s3":
        endpoint = request.getfixturevalue("s3_endpoint")
        return load_settings(repo, storage=f"s3://{new_bucket(endpoint)}/repo", s3_endpoint=endpoint)
    return load_settings(repo)


@pytest.fixture
def repo_settings(tmp_path: Path) -> Settings:
    return load_settings(tmp_path / "repo")


@pytest.fixture
def repository(repo_settings: Settings) -> Iterator[Repository]:
    repository = init_repository(repo_settings)
    yield repository
    repository.close()


class LiveServer:
    """uvicorn serving a fairimage app on 127.0.0.1 at a random free port, in a thread."""

    def __init__(self, settings: Settings) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.socket.close()


@pytest.fixture
def live_server() -> Iterator[type[LiveServer]]:
    yield LiveServer


ORTHANC = Path("/usr/sbin/Orthanc")
ORTHANC_DICOMWEB = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Orthanc PACS with its DICOMweb plugin (Debian's orthanc, orthanc-dicomweb) on 127.0.0.1 at a
    random port, its REST API's base URL; tests load it with DICOM files."""
    if not ORTHANC.exists() or not ORTHANC_DICOMWEB.exists():
        pytest.skip(
            "Orthanc is not installed (Debian packages orthanc and orthanc-dicomweb; 'make test' adds them)"
        )
    folder = tmp_path_factory.mktemp("orthanc")
    port = _free_port()
    config = {
        "Name": "fairimage-test",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "storage"),
        "HttpBindAddress": "127.0.0.1",
        "HttpPort": port,
        "DicomServerEnabled": False,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "Plugins": [str(ORTHANC_DICOMWEB)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
    }
    (folder / "orthanc.json").write_text(json.dumps(config))
    url = f"http://127.0.0.1:{port}"

    def answers() -> None:
        httpx.get(f"{url}/system", timeout=1).raise_for_status()

    server = _start([str(ORTHANC), str(folder / "orthanc.json")], answers, 60, "Orthanc", cwd=folder)
    yield url
    server.terminate()
    server.wait(timeout=20)


@pytest.fixture
def static_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A plain static file server (as a lab's web server or a bucket's public endpoint would be)."""
    folder = tmp_path / "www"
    folder.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", folder
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass
