"""The tests run the command through a fork server (tests/forkserver.py): what it gives must be what the
installed script gives, byte for byte, or every CLI test would be testing something else."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests import samples
from tests.conftest import run_cli


def _same(monkeypatch: pytest.MonkeyPatch, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run the command through the fork server and as the script itself (``run_cli``'s own switch, in
    the same environment): the two must agree. Returns the fork server's result."""
    forked = run_cli(*args)
    with monkeypatch.context() as spawning:
        spawning.setenv("FAIRIMAGE_TESTS_SPAWN", "1")
        spawned = run_cli(*args)
    assert (forked.returncode, forked.stdout, forked.stderr) == (
        spawned.returncode,
        spawned.stdout,
        spawned.stderr,
    )
    return forked


def test_the_fork_server_gives_what_the_script_gives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)
    picture = samples.png(
        tmp_path / "a-file-name-long-enough-to-wrap-in-a-narrow-terminal.png", np.eye(9, 9, dtype=np.uint8)
    )
    run_cli("ingest", picture, "--study", "A study whose name has to wrap", "--repo", repo, check=True)

    # The environment reaches the consoles, which read it when they are made: a narrow terminal wraps.
    monkeypatch.setenv("COLUMNS", "50")
    narrow = _same(monkeypatch, "images", "--repo", repo)
    monkeypatch.setenv("COLUMNS", "160")
    wide = run_cli("images", "--repo", repo)
    assert wide.stdout != narrow.stdout and max(map(len, wide.stdout.splitlines())) > 50

    # FORCE_COLOR is read when a console is made: the script's consoles are made in the run, not before.
    monkeypatch.setenv("FORCE_COLOR", "1")
    coloured = _same(monkeypatch, "images", "--repo", repo)
    assert "\x1b[" in coloured.stdout
    monkeypatch.delenv("FORCE_COLOR")

    _same(monkeypatch, "--help")
    # A usage error and one of ours: the same exit codes and the same one line, never a traceback.
    _same(monkeypatch, "ingest", "--no-such-option")
    missing = _same(monkeypatch, "images", "--repo", tmp_path / "nowhere")
    assert missing.returncode == 4 and "Traceback" not in missing.stderr


def test_each_run_is_a_process_of_its_own(tmp_path: Path) -> None:
    """Nothing one run changes is seen by the next: a fresh process each time, with its own ids."""
    ids = {
        run_cli("init", tmp_path / f"repo-{n}", check=True).stdout.split("node ")[1].split(",")[0]
        for n in range(3)
    }
    assert len(ids) == 3
