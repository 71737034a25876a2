"""Exports of a study, behind the same access checks as everything else: RO-Crate 1.3 (a folder or a zip,
with the OME-Zarr images linked by URL or copied in), DataCite 4.5 JSON and the REMBI JSON. What the caller
may not read (a restricted study's images) is not exported."""

from __future__ import annotations

import json
import shutil
import tempfile
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from fairimage.model.discovery import exports, oai
from fairimage.model.discovery.exports import Citable
from fairimage.model.discovery.jsonld import Links
from fairimage.model.errors import ConflictError, InvalidInputError
from fairimage.model.governance.policy import Principal
from fairimage.services.discovery import images as image_service
from fairimage.services.discovery import linked_data
from fairimage.services.governance import versions
from fairimage.services.repository import Repository

Kind = Literal["ro-crate", "datacite", "datacite-xml", "rembi-json"]
KINDS = ("ro-crate", "datacite", "datacite-xml", "rembi-json")


def export(
    repository: Repository,
    principal: Principal,
    study: str,
    kind: str,
    target: Path,
    base: str,
    copy_images: bool = False,
    version: int | None = None,
) -> Path:
    """Write the export ``kind`` of ``study`` to ``target`` (a ``.zip`` for a zipped RO-Crate); DataCite's
    for one published ``version`` (with its own DOI) where given, else for the study (its concept DOI)."""
    if kind not in KINDS:
        raise InvalidInputError(f"--as {kind}: use one of {', '.join(KINDS)}")
    if target.exists() and (target.is_file() or any(target.iterdir())):
        raise ConflictError(f"{target}: exists already; choose a new path")
    record = image_service.get_study(repository, principal, study)
    rembi = linked_data.study_rembi(repository, principal, record.id)
    links = Links(base)
    if kind == "rembi-json":
        return _write_json(target, rembi.dump())
    latest = versions.get_version(repository, principal, record.id, None) if record.may_read else None
    if kind in ("datacite", "datacite-xml"):
        citable = _citable(repository, principal, record.id, version, record.may_read)
        cited = versions.get_version(repository, principal, record.id, version) if version else latest
        year = (cited.published_at or cited.created_at).year if cited else record.created_at.year
        number = cited.number if cited else None
        attributes = exports.datacite(record, rembi, links, year, number, citable)
        if kind == "datacite":
            return _write_json(target, attributes)
        target.write_bytes(oai.to_bytes(oai.datacite_xml(attributes)))
        return target
    images = (
        image_service.list_images(repository, principal, study=record.id, limit=image_service.MAX_PAGE).items
        if record.may_read
        else []
    )
    published = (latest.published_at or latest.created_at) if latest else datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="fairimage-crate-") as staging:
        crate = Path(staging) / "crate"
        crate.mkdir()
        copied = (
            {image.id: _copy_image(repository, image.id, crate) for image in images} if copy_images else {}
        )
        correlative = linked_data.correlative_sets(repository, record.id) if record.may_read else []
        metadata = exports.rocrate(
            record, rembi, images, links, published.date().isoformat(), copied, correlative
        )
        _write_json(crate / "ro-crate-metadata.json", metadata)
        _write_json(crate / "rembi.json", rembi.dump())
        if target.suffix.lower() == ".zip":
            with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
                for path in sorted(crate.rglob("*")):  # folders too: data entities name them
                    archive.write(path, path.relative_to(crate).as_posix())
        else:
            shutil.copytree(crate, target, dirs_exist_ok=True)
    return target


def _citable(
    repository: Repository, principal: Principal, study_id: str, version: int | None, readable: bool
) -> Citable:
    """What the DataCite record is for; a restricted study's record, for one who may not read it, names
    none of its versions."""
    found = versions.list_versions(repository, principal, study_id) if readable else []
    published = tuple(v.number for v in found if v.published_at is not None)
    if version is not None and version not in published:
        raise InvalidInputError(
            f"--version {version}: not a published version of the study; publish it first (fairimage "
            "publish STUDY --version N): only a published version never changes, and so gets a DOI"
        )
    return Citable(repository.settings.doi_prefix, tuple(sorted(published)), version)


def _copy_image(repository: Repository, image_id: str, crate: Path) -> str:
    """Copy every stored key of an image into ``images/{id}.ome.zarr`` of the crate; its folder name."""
    root = repository.image_root(image_id)
    folder = f"images/{image_id}.ome.zarr"
    for info in root.store.list(root.prefix):
        path = crate / folder / root.relative(info.key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(root.store.read(info.key))
    return folder


def _write_json(path: Path, document: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
