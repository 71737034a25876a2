"""A repository whose images live in S3 (a real S3 API server, moto), used through the CLI and HTTP."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
import s3fs
import tifffile
import zarr

from fairimage.model.governance.policy import operator
from fairimage.services.discovery.images import list_images
from fairimage.services.ingest.intake import ingest_paths
from fairimage.services.recovery import open_repository
from fairimage.services.repository import Repository, init_repository
from fairimage.settings import load_settings
from fairimage.storage import layout
from tests import samples
from tests.conftest import FAIRIMAGE, LiveServer, run_cli


def _keys(s3_endpoint: str, prefix: str) -> list[str]:
    fs = s3fs.S3FileSystem(endpoint_url=s3_endpoint)
    fs.invalidate_cache()
    return fs.find(prefix) if fs.exists(prefix) else []


def test_ingest_to_s3_and_stream_from_it(tmp_path: Path, s3_endpoint: str, s3_bucket: str) -> None:
    pixels = samples.ramp((2, 1500, 1200), seed=3)  # several chunks and two levels
    source = samples.ome_tiff(tmp_path / "cells.ome.tif", pixels, axes="CYX")
    repo = tmp_path / "repo"
    run_cli("init", repo, "--storage", f"s3://{s3_bucket}/lab", "--s3-endpoint", s3_endpoint, check=True)
    config = (repo / "fairimage.toml").read_text()
    assert f"s3://{s3_bucket}/lab" in config and "fairimage-test-secret" not in config  # no credentials

    done = run_cli("ingest", "--repo", repo, source, "--json", check=True)
    image_id = json.loads(done.stdout)[0]["images"][0]
    stored = _keys(s3_endpoint, f"{s3_bucket}/lab/{layout.IMAGES}/{image_id}.ome.zarr")
    assert any(key.endswith("/0/c/0/0/0") for key in stored)
    assert _keys(s3_endpoint, f"{s3_bucket}/lab/{layout.STAGING}") == []
    assert not (repo / "objects").exists()  # nothing went to the local disk

    with LiveServer(load_settings(repo)) as server:
        group = zarr.open_group(f"{server.url}/zarr/{image_id}.ome.zarr", mode="r")
        np.testing.assert_array_equal(group["0"][...], pixels)
        assert group.attrs["ome"]["multiscales"][0]["datasets"][1]["path"] == "1"


def test_kill_9_during_an_s3_ingest_is_cleaned_up(tmp_path: Path, s3_endpoint: str, s3_bucket: str) -> None:
    stack = np.broadcast_to(np.arange(2048, dtype=np.uint16), (16, 2048, 2048))
    tifffile.imwrite(tmp_path / "big.tif", stack, photometric="minisblack")
    repo = tmp_path / "repo"
    run_cli("init", repo, "--storage", f"s3://{s3_bucket}/lab", "--s3-endpoint", s3_endpoint, check=True)
    process = subprocess.Popen(
        [FAIRIMAGE, "ingest", "--repo", str(repo), str(tmp_path / "big.tif")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if not k.startswith("FAIRIMAGE_")},
    )
    staging = f"{s3_bucket}/lab/{layout.STAGING}"
    deadline = time.monotonic() + 120
    while not any("/c/" in key for key in _keys(s3_endpoint, staging)):
        assert process.poll() is None, "ingest ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()

    listed = run_cli("images", "--repo", repo, "--json", check=True)  # any command cleans up
    assert json.loads(listed.stdout) == []
    assert _keys(s3_endpoint, staging) == []
    assert _keys(s3_endpoint, f"{s3_bucket}/lab/{layout.IMAGES}") == []


def test_sharded_images_in_s3_are_few_objects_and_read_remotely(
    tmp_path: Path, s3_endpoint: str, s3_bucket: str
) -> None:
    pixels = samples.ramp((3, 2100, 2300), seed=4)  # 3 x 5 x 3 chunks of 512 x 1024 at level 0
    source = samples.ome_tiff(tmp_path / "cells.ome.tif", pixels, axes="CYX")
    repo = tmp_path / "repo"
    storage = f"s3://{s3_bucket}/lab"
    run_cli(
        "init", repo, "--storage", storage, "--s3-endpoint", s3_endpoint, "--shard-chunks", "4", check=True
    )
    done = run_cli("ingest", "--repo", repo, source, "--json", check=True)
    image_id = json.loads(done.stdout)[0]["images"][0]
    level_0 = [k for k in _keys(s3_endpoint, f"{s3_bucket}/lab/images/{image_id}.ome.zarr/0") if "/c/" in k]
    assert len(level_0) == 3 * 2 * 1  # 45 chunks in 6 shards of up to 4 x 4 chunks

    with LiveServer(load_settings(repo)) as server:
        group = zarr.open_group(f"{server.url}/zarr/{image_id}.ome.zarr", mode="r")
        assert group["0"].shards == (1, 2048, 4096)
        np.testing.assert_array_equal(group["0"][...], pixels)
        np.testing.assert_array_equal(group["0"][1, 1000:1100, 2000:2300], pixels[1, 1000:1100, 2000:2300])


def test_init_with_unusable_object_storage_says_why_and_leaves_nothing(
    tmp_path: Path, s3_endpoint: str
) -> None:
    unreachable = run_cli(
        "init", tmp_path / "a", "--storage", "s3://lab/x", "--s3-endpoint", "http://127.0.0.1:9"
    )
    missing = run_cli(
        "init", tmp_path / "b", "--storage", "s3://no-such-bucket/x", "--s3-endpoint", s3_endpoint
    )
    assert (unreachable.returncode, missing.returncode) == (5, 5)
    assert "cannot reach the object store at http://127.0.0.1:9" in unreachable.stderr
    assert "bucket 'no-such-bucket' does not exist" in missing.stderr
    for result in (unreachable, missing):
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


S3_ERRORS = {
    503: ("SlowDown", "Please reduce your request rate."),
    500: ("InternalError", "We encountered an internal error. Please try again."),
}
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"}
# Which requests fail: (number of the request, method, path) -> the status to answer it with, or None.
FaultRule = Callable[[int, str, str], int | None]


class FaultyS3:
    """An HTTP proxy on 127.0.0.1 in front of the S3 server that answers the requests ``rule`` picks itself,
    with S3's own errors (503 SlowDown, 500 InternalError), and forwards the others."""

    def __init__(self, upstream: str, rule: FaultRule) -> None:
        self.upstream = urlsplit(upstream)
        self.rule = rule
        self.requests = 0
        self.failed = 0
        self.first_failed_at: float | None = None  # time.monotonic() of the first request it failed
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FaultyS3:
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _decide(self, method: str, path: str) -> int | None:
        with self._lock:
            self.requests += 1
            status = self.rule(self.requests, method, path)
            self.failed += status is not None
            if status is not None and self.first_failed_at is None:
                self.first_failed_at = time.monotonic()
            return status

    def _forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        upstream = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=30)
        try:
            upstream.request(method, path, body=body, headers=headers)  # Host kept: the request is signed
            response = upstream.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            upstream.close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def answer(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = proxy._decide(self.command, self.path)
                if status is None:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                    status, headers_back, payload = proxy._forward(self.command, self.path, headers, body)
                else:
                    code, message = S3_ERRORS[status]
                    payload = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()
                    headers_back = [("Content-Type", "application/xml")]
                self.send_response(status)
                for name, value in headers_back:
                    if name.lower() not in HOP_BY_HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = answer

        return Handler


@contextmanager
def _repository_behind(
    tmp_path: Path, s3_endpoint: str, s3_bucket: str, rule: FaultRule
) -> Iterator[tuple[Repository, FaultyS3]]:
    """A repository whose objects are in S3, reached through a FaultyS3 proxy that applies ``rule`` once the
    repository is made."""
    with FaultyS3(s3_endpoint, lambda number, method, path: None) as proxy:
        settings = load_settings(tmp_path / "repo", storage=f"s3://{s3_bucket}/lab", s3_endpoint=proxy.url)
        repository = init_repository(settings)
        proxy.rule = rule
        try:
            yield repository, proxy
        finally:
            repository.close()


def _every_tenth(number: int, method: str, path: str) -> int | None:
    return (503, 500)[number // 10 % 2] if number % 10 == 0 else None


def test_ingest_through_an_s3_that_fails_now_and_then_stores_every_pixel(
    tmp_path: Path, s3_endpoint: str, s3_bucket: str
) -> None:
    pixels = samples.ramp((2, 700, 300), seed=6)
    source = samples.ome_tiff(tmp_path / "cells.ome.tif", pixels, axes="CYX")
    with _repository_behind(tmp_path, s3_endpoint, s3_bucket, _every_tenth) as (repository, proxy):
        [outcome] = ingest_paths(repository, [source])
    assert outcome.status == "ingested", outcome.error
    assert proxy.failed >= 5, "the proxy should have failed some requests"
    stored = zarr.open_array(
        f"s3://{s3_bucket}/lab/{layout.IMAGES}/{outcome.images[0]}.ome.zarr/0",
        mode="r",
        storage_options={"endpoint_url": s3_endpoint},
    )
    np.testing.assert_array_equal(stored[...], pixels)
    assert _keys(s3_endpoint, f"{s3_bucket}/lab/{layout.STAGING}") == []


def _every_request() -> FaultRule:
    return lambda number, method, path: 503


def _every_write() -> FaultRule:
    return lambda number, method, path: 503 if method == "PUT" else None


def _everything_from_the_first_chunk() -> FaultRule:
    down = threading.Event()

    def rule(number: int, method: str, path: str) -> int | None:
        if method == "PUT" and "/c/" in path:
            down.set()
        return 503 if down.is_set() else None

    return rule


@pytest.mark.parametrize(
    ("outage", "exit_code", "says"),
    [
        (_every_request, 5, "error: storage s3://{bucket}/lab at http://127.0.0.1:"),  # opening the store
        (_every_write, 1, "failed {source}: s3://{bucket}/lab/staging/"),  # the file fails, cleaning up works
        (_everything_from_the_first_chunk, 5, "error: staging/run-"),  # cleaning up fails: the next command
    ],
    ids=["every-request", "every-write", "everything-from-the-first-chunk"],
)
def test_an_s3_that_keeps_answering_503_fails_the_ingest_soon_in_one_line_and_publishes_nothing(
    tmp_path: Path,
    s3_endpoint: str,
    s3_bucket: str,
    outage: Callable[[], FaultRule],
    exit_code: int,
    says: str,
) -> None:
    source = samples.ome_tiff(tmp_path / "cells.ome.tif", samples.ramp((2, 300, 200), seed=7), axes="CYX")
    with _repository_behind(tmp_path, s3_endpoint, s3_bucket, outage()) as (repository, proxy):
        repo = repository.settings.repo
        failed = run_cli("ingest", "--repo", repo, source)
        # from S3's first failure to the command's end (its start-up, however loaded the machine, is not
        # what is measured: how long it keeps trying is)
        took = time.monotonic() - (proxy.first_failed_at or 0.0)
        proxy.rule = lambda number, method, path: None  # S3 is back
        with closing(open_repository(load_settings(repo))) as reopened:  # as the next command does: cleans up
            listed = list_images(reopened, operator("test")).items
    assert failed.returncode == exit_code, failed.stdout + failed.stderr
    assert took < 8, f"the ingest took {took:.1f} s to give up after S3's first failure"
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in failed.stderr, failed.stderr
    assert lines[0].startswith(says.format(source=source, bucket=s3_bucket)), lines[0]
    assert lines[0].endswith(": the object store kept failing (503 SlowDown), tried 3 times; try again later")
    assert listed == []
    assert _keys(s3_endpoint, f"{s3_bucket}/lab/{layout.STAGING}") == []
    assert _keys(s3_endpoint, f"{s3_bucket}/lab/{layout.IMAGES}") == []
