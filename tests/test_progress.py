"""The progress bar a person sees in a terminal (a real pseudo-terminal), and its absence for machines."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tifffile

from tests.conftest import FAIRIMAGE, run_cli

_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _in_terminal(*args: str | Path) -> tuple[int, str]:
    """Run the CLI with stdout and stderr on a pseudo-terminal; returns its exit code and what it drew."""
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAIRIMAGE_")}
    env.update(COLUMNS="120", TERM="xterm")
    process = subprocess.Popen([FAIRIMAGE, *map(str, args)], stdout=slave, stderr=slave, env=env)
    os.close(slave)
    drawn = b""
    while True:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # the terminal closed: the command is done
                break
            if not data:
                break
            drawn += data
        elif process.poll() is not None:
            break
    os.close(master)
    return process.wait(timeout=60), _ESCAPES.sub("", drawn.decode(errors="replace"))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("progress") / "stack.tif"
    tifffile.imwrite(path, np.broadcast_to(np.arange(4096, dtype=np.uint16), (8, 2048, 4096)))  # 134 MB
    return path


def test_ingest_in_a_terminal_draws_a_bar_with_bytes_and_rate(stack: Path, tmp_path: Path) -> None:
    run_cli("init", tmp_path / "repo", check=True)
    code, drawn = _in_terminal("ingest", "--repo", tmp_path / "repo", stack)
    assert code == 0
    assert "stack.tif" in drawn and "/134.2 MB" in drawn
    assert "134.2/134.2 MB" in drawn  # it reached the end
    assert re.search(r"\d+\.\d MB/s", drawn)
    assert "1 ingested" in drawn


def test_json_output_has_no_bar_even_in_a_terminal(stack: Path, tmp_path: Path) -> None:
    run_cli("init", tmp_path / "repo", check=True)
    code, drawn = _in_terminal("ingest", "--repo", tmp_path / "repo", stack, "--json")
    assert code == 0
    assert "MB/s" not in drawn and "━" not in drawn
    assert '"status": "ingested"' in drawn


def test_a_cluster_ingest_shows_progress_across_its_workers(stack: Path, tmp_path: Path) -> None:
    run_cli("init", tmp_path / "repo", check=True)
    code, drawn = _in_terminal("ingest", "--repo", tmp_path / "repo", stack.parent, "--workers", "2")
    assert code == 0
    assert "1 file on 2 dask workers" in drawn
    assert "1 ingested" in drawn
