"""The tests run the command through a fork server (tests/forkserver.py): what it gives must be what the
installed script gives, byte for byte, or every CLI test would be testing something else."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests import samples
from tests.conftest import FAIRIMAGE, run_cli


def _spawned(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FAIRIMAGE_")}
    command = [FAIRIMAGE, *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, env={**clean, **(env or {})}, timeout=120)


def _same(forked: subprocess.CompletedProcess[str], spawned: subprocess.CompletedProcess[str]) -> None:
    assert (forked.returncode, forked.stdout, forked.stderr) == (
        spawned.returncode,
        spawned.stdout,
        spawned.stderr,
    )


def test_the_fork_server_gives_what_the_script_gives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)
    picture = samples.png(
        tmp_path / "a-file-name-long-enough-to-wrap-in-a-narrow-terminal.png", np.eye(9, 9, dtype=np.uint8)
    )
    run_cli("ingest", picture, "--study", "A study whose name has to wrap", "--repo", repo, check=True)

    # The environment reaches the consoles, which read it when they are made: a narrow terminal wraps.
    monkeypatch.setenv("COLUMNS", "50")
    narrow = run_cli("images", "--repo", repo)
    _same(narrow, _spawned("images", "--repo", repo, env={"COLUMNS": "50"}))
    monkeypatch.setenv("COLUMNS", "160")
    wide = run_cli("images", "--repo", repo)
    assert wide.stdout != narrow.stdout and max(map(len, wide.stdout.splitlines())) > 50

    # FORCE_COLOR is read when a console is made: the script's consoles are made in the run, not before.
    monkeypatch.setenv("FORCE_COLOR", "1")
    coloured = run_cli("images", "--repo", repo)
    _same(coloured, _spawned("images", "--repo", repo, env={"COLUMNS": "160", "FORCE_COLOR": "1"}))
    assert "\x1b[" in coloured.stdout
    monkeypatch.delenv("FORCE_COLOR")

    _same(run_cli("--help"), _spawned("--help", env={"COLUMNS": "160"}))
    # A usage error and one of ours: the same exit codes and the same one line, never a traceback.
    _same(
        run_cli("ingest", "--no-such-option"), _spawned("ingest", "--no-such-option", env={"COLUMNS": "160"})
    )
    missing = run_cli("images", "--repo", tmp_path / "nowhere")
    _same(missing, _spawned("images", "--repo", tmp_path / "nowhere", env={"COLUMNS": "160"}))
    assert missing.returncode == 4 and "Traceback" not in missing.stderr


def test_each_run_is_a_process_of_its_own(tmp_path: Path) -> None:
    """Nothing one run changes is seen by the next: a fresh process each time, with its own ids."""
    ids = {
        run_cli("init", tmp_path / f"repo-{n}", check=True).stdout.split("node ")[1].split(",")[0]
        for n in range(3)
    }
    assert len(ids) == 3
