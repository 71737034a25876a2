"""Faults injected into real processes: kill -9 of ingest and of the server at random moments, the catalog's
connections dropped under a running server. Afterwards the catalog and the store never disagree: every listed
image opens, holds the pixels it was made from and passes a full fixity check; nothing staged is visible."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import zarr

from tests import samples
from tests.conftest import FAIRIMAGE, run_cli


def _inputs(folder: Path) -> dict[str, np.ndarray]:
    """Three files that take an ingest a few seconds together, by name with their pixels."""
    made = {
        "stack.ome.tif": samples.ramp((6, 1024, 1536), seed=1),
        "plane.ome.tif": samples.ramp((2, 2048, 2048), seed=2),
        "small.ome.tif": samples.ramp((2, 300, 200), seed=3),
    }
    for name, pixels in made.items():
        samples.ome_tiff(folder / name, pixels, axes="CYX" if pixels.shape[0] == 2 else "ZYX")
    return made


def _check_consistent(repo: Path, sources: dict[str, np.ndarray]) -> list[str]:
    """The catalog and the store agree; the names of the images listed."""
    listed = json.loads(run_cli("images", "--repo", repo, "--json", check=True).stdout)
    images = repo / "objects" / "images"
    on_disk = sorted(p.name.removesuffix(".ome.zarr") for p in images.iterdir()) if images.exists() else []
    assert sorted(image["id"] for image in listed) == on_disk, "an image folder without a catalog row"
    staging = repo / "objects" / "staging"
    assert not staging.exists() or not [p for p in staging.rglob("*") if p.is_file()], "staged files left"
    for image in listed:
        level = zarr.open_array(str(images / f"{image['id']}.ome.zarr" / "0"), mode="r")
        assert np.array_equal(level[...], sources[image["name"]]), image["name"]
    fixity = run_cli("fixity", "--repo", repo, "--sample", "100", "--json")
    assert fixity.returncode == 0, fixity.stdout + fixity.stderr
    return sorted(image["name"] for image in listed)


@pytest.mark.slow
def test_kill_9_of_ingest_at_random_moments_never_leaves_catalog_and_store_disagreeing(
    tmp_path: Path,
) -> None:
    sources = _inputs(tmp_path)
    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)
    files = [tmp_path / name for name in sources]
    started = time.monotonic()
    run_cli("ingest", "--repo", repo, "--study", "timing", *files, check=True)
    whole = time.monotonic() - started
    repo_rounds = tmp_path / "rounds"
    run_cli("init", repo_rounds, check=True)
    chance = random.Random(21)
    moments = []
    for round_number in range(20):
        moment = chance.uniform(0.05, whole * 1.1)  # from start-up to past the last commit
        moments.append(moment)
        process = subprocess.Popen(
            [
                FAIRIMAGE,
                "ingest",
                "--repo",
                str(repo_rounds),
                "--study",
                f"round {round_number}",
                *map(str, files),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(moment)
        process.send_signal(signal.SIGKILL)
        process.wait()
        _check_consistent(repo_rounds, sources)
    final = run_cli("ingest", "--repo", repo_rounds, "--json", *files, check=True)
    assert {outcome["status"] for outcome in json.loads(final.stdout)} <= {"ingested", "already_present"}
    assert _check_consistent(repo_rounds, sources) == sorted(sources)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _serve(repo: Path, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAIRIMAGE_")}
    server = subprocess.Popen(
        [FAIRIMAGE, "serve", "--repo", str(repo), "--port", str(port), "--workers", str(workers)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    _wait_until_it_answers(url, server)
    return server, url


def _wait_until_it_answers(url: str, server: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(url + "/api/studies", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert server.poll() is None, "the server exited"
        assert time.monotonic() < deadline, "the server did not answer"
        time.sleep(0.1)


def _workers(server: subprocess.Popen[bytes]) -> list[int]:
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    return [int(pid) for pid in children]


@pytest.mark.slow  # 25 s: ten of them waiting for the respawned worker that ignores SIGTERM to be killed
def test_a_server_worker_killed_with_9_is_replaced_and_chunks_keep_coming(tmp_path: Path) -> None:
    pixels = samples.ramp((2, 300, 200), seed=5)
    source = samples.ome_tiff(tmp_path / "cells.ome.tif", pixels, axes="CYX")
    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)
    image = json.loads(run_cli("ingest", "--repo", repo, "--json", source, check=True).stdout)[0]["images"][0]
    server, url = _serve(repo, workers=2)
    key = f"{url}/zarr/{image}.ome.zarr/0/c/0/0/0"
    try:
        expected = httpx.get(key).content
        before = _workers(server)
        assert len(before) == 2
        os.kill(before[0], signal.SIGKILL)
        deadline = time.monotonic() + 30
        answers = []
        while time.monotonic() < deadline:
            try:
                answers.append(httpx.get(key, timeout=5).content == expected)
            except httpx.HTTPError:
                answers.append(False)
            now = _workers(server)
            if len(now) == 2 and before[0] not in now and answers[-1]:
                break
            time.sleep(0.05)
        assert before[0] not in _workers(server) and len(_workers(server)) == 2, "the worker was not replaced"
        assert answers[-1], "chunks stopped coming"
        assert sum(answers) >= len(answers) - 5, "the surviving worker should go on answering"
    finally:
        server.terminate()
        server.wait(timeout=20)
    # The server writes nothing but the audit log: the repository is still whole.
    assert _check_consistent(repo, {"cells.ome.tif": pixels}) == ["cells.ome.tif"]


SERVER_NAME = "fairimage-faults-test"


def test_the_server_answers_again_after_postgresql_drops_its_connections(
    tmp_path: Path, postgres_url: str
) -> None:
    """What a PostgreSQL restart looks like to a client: every connection of the server's is terminated.
    The server reconnects by itself (a pre-ping on each pooled connection) and answers again."""
    from sqlalchemy import create_engine, text

    source = samples.ome_tiff(tmp_path / "cells.ome.tif", samples.ramp((2, 200, 100)), axes="CYX")
    repo = tmp_path / "repo"
    catalog = f"{postgres_url}&application_name={SERVER_NAME}"  # so that only its connections are cut
    run_cli("init", repo, "--db", catalog, check=True)
    run_cli("ingest", "--repo", repo, source, check=True)
    server, url = _serve(repo, workers=1)
    admin = create_engine(postgres_url)
    try:
        assert len(httpx.get(url + "/api/images").json()["items"]) == 1
        with admin.connect() as connection:
            schema = connection.execute(text("select current_schema()")).scalar()
            dropped = connection.execute(
                text(
                    "select count(pg_terminate_backend(pid)) from pg_stat_activity "
                    "where application_name = :name"
                ),
                {"name": SERVER_NAME},
            ).scalar()
        assert schema and dropped >= 1, "the server should have held a connection"
        answered = httpx.get(url + "/api/images", timeout=30)
        assert answered.status_code == 200 and len(answered.json()["items"]) == 1
        assert server.poll() is None
    finally:
        admin.dispose()
        server.terminate()
        server.wait(timeout=20)
