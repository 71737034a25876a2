"""The repository's disk fills up during an ingest: a real, small tmpfs holds the repository and a file bigger
than the space is ingested. The user is told in one line which file and why; nothing is half-published and
nothing is left staged, so the next ingest works on the space that is left."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from fairimage.services.repository import init_repository
from fairimage.settings import load_settings
from tests import samples
from tests.conftest import run_cli

DISK_BYTES = 8 << 20


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs mounted for this test; skips where mounting is not allowed."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(
            f"cannot mount a tmpfs here (a container without CAP_SYS_ADMIN?): {mounted.stderr.strip()}"
        )
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def _stored_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def test_a_full_disk_fails_the_file_in_one_line_and_leaves_nothing_behind(
    tmp_path: Path, small_disk: Path
) -> None:
    noise = np.random.default_rng(7).integers(0, 2**16, size=(6, 1024, 1024), dtype=np.uint16)
    big = samples.ome_tiff(tmp_path / "big.ome.tif", noise, axes="CYX")  # 12 MiB that do not compress
    assert big.stat().st_size > DISK_BYTES
    repo = small_disk / "repo"
    init_repository(load_settings(repo)).close()

    failed = run_cli("ingest", "--repo", repo, big)
    assert failed.returncode != 0
    assert "Traceback" not in failed.stderr
    disk_full = f"no space left on the repository's disk ({repo / 'objects'}: No space left on device)"
    assert failed.stderr.strip().splitlines() == [
        f"failed {big}: {disk_full}; free space or use another storage"
    ]
    assert json.loads(run_cli("images", "--repo", repo, "--json", check=True).stdout) == []
    assert _stored_files(repo / "objects" / "staging") == []
    assert _stored_files(repo / "objects" / "images") == []
    assert shutil.disk_usage(small_disk).free > DISK_BYTES // 2, "the staged chunks should be gone"

    small = samples.ome_tiff(tmp_path / "small.ome.tif", samples.ramp((2, 200, 100), seed=2), axes="CYX")
    done = json.loads(run_cli("ingest", "--repo", repo, small, "--json", check=True).stdout)
    assert [outcome["status"] for outcome in done] == ["ingested"]
    fixity = run_cli("fixity", "--repo", repo, "--json")
    assert fixity.returncode == 0, fixity.stdout + fixity.stderr
    assert json.loads(fixity.stdout)["images"] == 1
