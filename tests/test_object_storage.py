"""A repository whose images live in S3 (a real S3 API server, moto), used through the CLI and HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import s3fs
import tifffile
import zarr

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
