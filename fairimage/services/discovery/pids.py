"""Persistent identifiers: every study (``study-…``), version (``study-….v3``), image (``img-…``) and
original file (``file-…``) resolves at ``/pid/{id}``, after the same access check as what it names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select

from fairimage.catalog.tables import HarvestedStudyRow, ImageRow
from fairimage.model.errors import NotFoundError
from fairimage.model.governance.policy import Principal
from fairimage.services.governance import access, versions
from fairimage.services.repository import Repository

Kind = Literal["study", "version", "image", "file", "elsewhere"]


@dataclass(frozen=True)
class Resolved:
    """What a PID names: a study (and version number), or an image (a file resolves to its first)."""

    kind: Kind
    study_id: str | None = None
    version: int | None = None
    image_id: str | None = None
    url: str | None = None  # a study another node holds (known from its harvested record): its PID there


def resolve(repository: Repository, principal: Principal, pid: str) -> Resolved:
    """What ``pid`` names, if the caller may see it; a study (or version) of a peer, by the record
    harvested from it, resolves to its PID there; NotFoundError otherwise, as for what does not exist."""
    try:
        return _resolve_here(repository, principal, pid)
    except NotFoundError:
        elsewhere = _harvested_pid(repository, pid) if pid.startswith("study-") else None
        if elsewhere is None:
            raise
        return Resolved("elsewhere", url=elsewhere)


def _harvested_pid(repository: Repository, pid: str) -> str | None:
    study_id, dot, version = pid.partition(".")
    with repository.reading() as session:
        found = session.scalar(select(HarvestedStudyRow.pid).where(HarvestedStudyRow.origin_id == study_id))
    return None if found is None else found + dot + version


def _resolve_here(repository: Repository, principal: Principal, pid: str) -> Resolved:
    if pid.startswith("study-") and ".v" in pid:
        version = versions.resolve(repository, principal, pid)
        return Resolved("version", study_id=version.study_id, version=version.number)
    if pid.startswith("study-"):
        return Resolved("study", study_id=access.find_study(repository, principal, pid))
    if pid.startswith("img-"):
        access.check_image(repository, principal, pid)
        return Resolved("image", image_id=pid)
    if pid.startswith("file-"):
        with repository.reading() as session:
            image_id = session.scalar(
                select(ImageRow.id).where(ImageRow.file_id == pid).order_by(ImageRow.series_index).limit(1)
            )
        if image_id is not None:
            access.check_image(repository, principal, image_id)
            return Resolved("file", image_id=image_id)
    raise NotFoundError(f"identifier {pid!r} not found")
