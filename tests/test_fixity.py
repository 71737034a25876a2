"""Fixity: a flipped byte, a deleted chunk, an unexpected object and an edited manifest are each reported
by key; the run is in the audit log; 'serve' runs sampled checks on a schedule."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from fairimage.services.governance import audit, fixity
from fairimage.services.ingest.intake import ingest_paths
from fairimage.services.recovery import open_repository
from fairimage.services.repository import Repository, init_repository
from fairimage.settings import load_settings
from fairimage.storage import layout
from tests import samples
from tests.conftest import LiveServer, run_cli, storage_settings


def _repository(request: pytest.FixtureRequest, root: Path, backend: str = "local") -> tuple[Repository, str]:
    repository = init_repository(storage_settings(request, root / "repo", backend))
    path = samples.ome_tiff(root / "stack.ome.tif", samples.ramp((2, 700, 1300), seed=2), axes="CYX")
    (outcome,) = ingest_paths(repository, [path], study="fixity")
    return repository, outcome.images[0]


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_damage_is_found_and_named_by_key(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str
) -> None:
    repository, image = _repository(request, tmp_path, backend)
    try:
        clean = fixity.check_fixity(repository, actor="test")
        assert clean.ok and clean.images == 1 and clean.objects > 6
        store, prefix = repository.store, layout.image_prefix(image)
        chunk = f"{prefix}/0/c/0/0/0"
        damaged = bytearray(store.read(chunk))
        damaged[len(damaged) // 2] ^= 0x01  # one bit of one chunk
        store.write(chunk, bytes(damaged))
        store.delete(f"{prefix}/0/c/1/0/0")
        store.write(f"{prefix}/0/c/9/9/9", b"planted")
        report = fixity.check_fixity(repository, actor="test")
        found = {(problem.key, problem.kind) for problem in report.problems}
        assert found == {("0/c/0/0/0", "corrupted"), ("0/c/1/0/0", "missing"), ("0/c/9/9/9", "unexpected")}
        entry = audit.entries(repository, limit=1, action="fixity.check")[0]
        assert entry.decision == "failed" and len(entry.details["problems"]) == 3
        # A manifest edited to hide the damage no longer matches the sha256 in the catalog.
        manifest = json.loads(store.read(layout.manifest_key(image)))
        manifest["objects"]["0/c/0/0/0"]["sha256"] = "0" * 64
        store.write(layout.manifest_key(image), json.dumps(manifest).encode())
        (problem,) = fixity.check_fixity(repository, actor="test").problems
        assert problem.kind == "manifest" and "the manifest was changed" in problem.detail
    finally:
        repository.close()


def test_a_sample_checks_a_share_of_the_objects(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    repository, _ = _repository(request, tmp_path)
    try:
        full = fixity.check_fixity(repository)
        sampled = fixity.check_fixity(repository, sample_percent=30, seed=1)
        assert 0 < sampled.objects < full.objects and sampled.ok
        with pytest.raises(Exception, match="give a percentage above 0 and at most 100"):
            fixity.check_fixity(repository, sample_percent=0)
    finally:
        repository.close()


def test_cli_reports_each_problem_and_exits_7(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    repository, image = _repository(request, tmp_path)
    repository.store.delete(f"{layout.image_prefix(image)}/1/c/0/0/0")
    repository.close()
    result = run_cli("fixity", "--repo", tmp_path / "repo")
    assert result.returncode == 7
    assert (
        result.stderr.strip() == f"{image}/1/c/0/0/0: missing (listed in the manifest, absent from the store)"
    )
    assert "1 problem(s)" in result.stdout


def test_serve_runs_sampled_checks_on_a_schedule(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    repository, _ = _repository(request, tmp_path)
    repository.close()
    settings = load_settings(tmp_path / "repo", fixity_hours=0.5 / 3600, fixity_sample=50)
    with LiveServer(settings):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            reader = open_repository(settings)
            runs = [e for e in audit.entries(reader, action="fixity.check") if e.actor == "fixity-schedule"]
            reader.close()
            if runs:
                break
            time.sleep(0.3)
    assert runs and runs[0].decision == "ok" and runs[0].details["sample_percent"] == 50
