"""Ingest from a PACS over DICOMweb: the study's series are retrieved into the repository's scratch folder
and ingested like files (grouped, de-identified, converted); the retrieved files are removed afterwards,
kept only where the repository keeps originals (encrypted)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from fairimage.formats.dicomweb import DicomWeb, pull
from fairimage.services.ingest.conversion import DEFAULT_STUDY, FileOutcome, Progress
from fairimage.services.ingest.intake import ingest_paths
from fairimage.services.repository import Repository


def pull_study(
    repository: Repository,
    url: str,
    study_uid: str,
    series_uids: list[str] | None = None,
    study: str = DEFAULT_STUDY,
    actor: str = "operator",
    progress: Progress | None = None,
    on_instance: Callable[[int, int], None] | None = None,
) -> list[FileOutcome]:
    """Retrieve ``study_uid`` (or some of its series) from the DICOMweb service at ``url`` and ingest it
    into ``study``; one outcome per series."""
    scratch = repository.settings.repo / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    folder = tempfile.mkdtemp(prefix="dicomweb-", dir=scratch)
    try:
        paths = pull(DicomWeb(url), study_uid, Path(folder), series_uids, on_instance)
        return ingest_paths(repository, paths, study=study, progress=progress, actor=actor)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
