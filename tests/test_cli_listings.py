"""Listings on a narrow terminal: identifiers are what people copy into the next command, so they are never
cut short; the other columns wrap first."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests import samples
from tests.conftest import run_cli


def test_image_ids_are_whole_at_any_width(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)
    pictures = [
        samples.png(
            tmp_path / f"a-long-file-name-from-the-microscope-{index}.png", np.full((8, 9), index, np.uint8)
        )
        for index in range(2)
    ]
    run_cli("ingest", *pictures, "--study", "A study with a rather long descriptive name", "--repo", repo)
    listing = json.loads(run_cli("images", "--repo", repo, "--json", check=True).stdout)
    ids = [image["id"] for image in listing]
    assert len(ids) == 2 and ids[0][:12] == ids[1][:12]  # they share a prefix: a cut id is useless

    for columns in ("80", "50"):
        monkeypatch.setenv("COLUMNS", columns)
        listed = run_cli("images", "--repo", repo, check=True).stdout
        for image_id in ids:
            assert image_id in listed, f"at {columns} columns:\n{listed}"
