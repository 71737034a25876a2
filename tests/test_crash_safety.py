"""A process killed mid-ingest (kill -9) leaves nothing visible, and the next command cleans up after it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import tifffile

from fairimage.services.ingest.runs import clean_stale_runs, ingest_run
from fairimage.services.recovery import open_repository
from fairimage.storage import layout
from tests.conftest import FAIRIMAGE, run_cli


def _files_below(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def test_kill_9_during_conversion_leaves_nothing_and_next_command_cleans(tmp_path: Path) -> None:
    stack = np.broadcast_to(np.arange(4096, dtype=np.uint16), (12, 2048, 4096))  # 192 MiB, slow enough
    tifffile.imwrite(tmp_path / "big.tif", stack, photometric="minisblack")
    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)
    process = subprocess.Popen(
        [FAIRIMAGE, "ingest", "--repo", str(repo), str(tmp_path / "big.tif")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    staging = repo / "objects" / layout.STAGING
    deadline = time.monotonic() + 120
    while not any(p.name.isdigit() for p in _files_below(staging)):  # chunks are being written
        assert process.poll() is None, "ingest ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert _files_below(staging), "the kill should have left a staging area behind"

    listed = run_cli("images", "--repo", repo, "--json", check=True)  # any command cleans up
    assert json.loads(listed.stdout) == []
    assert _files_below(staging) == []
    assert _files_below(repo / "objects" / layout.IMAGES) == []
    assert list((repo / "runs").iterdir()) == []
    again = run_cli("ingest", "--repo", repo, tmp_path / "big.tif", "--json", check=True)
    assert json.loads(again.stdout)[0]["status"] == "ingested"


def test_an_image_moved_into_place_but_never_committed_is_removed(tmp_path: Path) -> None:
    """The narrow window between the move and the catalog commit: the intent record finds the orphan."""
    run_cli("init", tmp_path / "repo", check=True)
    from fairimage.settings import load_settings

    repository = open_repository(load_settings(tmp_path / "repo"))
    store = repository.store
    with ingest_run(repository) as run:
        store.write(layout.staged_manifest_key(run.id, "img-orphan"), b"{}")
        store.write(f"{layout.staged_image_prefix(run.id, 'img-orphan')}/zarr.json", b"{}")
        run.intend("img-orphan")
        store.move(layout.staged_image_prefix(run.id, "img-orphan"), layout.image_prefix("img-orphan"))
        # While the run lives, a cleaner leaves it alone.
        assert clean_stale_runs(repository) == []
        assert store.stat(f"{layout.image_prefix('img-orphan')}/zarr.json").size == 2
        lock = next((tmp_path / "repo" / "runs").glob("*.lock"))
        intents = lock.with_suffix(".intents").read_text()
        saved_lock = lock.read_bytes()
    # Simulate the process dying right here: its lock file and intents are still on disk, unlocked.
    lock.write_bytes(saved_lock)
    lock.with_suffix(".intents").write_text(intents)
    store.write(f"{layout.image_prefix('img-orphan')}/zarr.json", b"{}")
    assert clean_stale_runs(repository) == [lock.stem]
    assert list(store.list(layout.IMAGES)) == []
    assert not lock.exists()
    repository.close()
