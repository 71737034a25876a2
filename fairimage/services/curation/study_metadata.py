"""Curating a study's REMBI metadata: read a study file (YAML, JSON or a folder of CSV sheets), check it
against the bundled ontologies, save it (a new version, audited), show it with what the images already say,
and score the study's FAIRness.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select

from fairimage import ontology
from fairimage.catalog import queries
from fairimage.catalog.tables import ImageRow, StudyRow, StudyVersionRow
from fairimage.model.curation.checks import FairScore, Report, StudyFacts, check, fair_score
from fairimage.model.curation.rembi import ATTRIBUTES, Rembi
from fairimage.model.errors import InvalidInputError, NotFoundError
from fairimage.model.governance.policy import PolicyKind, Principal
from fairimage.services.curation.spreadsheets import read_sheets
from fairimage.services.discovery import search
from fairimage.services.governance import access, audit, versions
from fairimage.services.privacy import phi
from fairimage.services.repository import Repository


class MetadataError(InvalidInputError):
    """Metadata with wrong values: every problem is in ``report``; the message names the first."""

    def __init__(self, report: Report) -> None:
        first = report.errors[0] if report.errors else "the metadata cannot be read"
        more = f" (and {len(report.errors) - 1} more)" if len(report.errors) > 1 else ""
        super().__init__(f"{first}{more}")
        self.report = report


def read_study_file(path: Path) -> Any:
    """The contents of a study file: YAML or JSON, or a folder of CSV sheets (one per REMBI section)."""
    if path.is_dir() or path.suffix.lower() == ".xlsx":
        if not path.exists():
            raise NotFoundError(f"{path}: no such file or folder")
        return read_sheets(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFoundError(
            f"{path}: no such file; write one with 'fairimage template rembi > {path}'"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{path}: cannot read it as text ({exc})") from None
    if path.suffix.lower() == ".json":
        try:
            return _bounded(path, json.loads(text))
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"{path}: line {exc.lineno}: not valid JSON ({exc.msg})") from None
        except RecursionError:
            raise InvalidInputError(f"{path}: nested deeper than a study file can be") from None
    try:
        return _bounded(path, yaml.safe_load(text) or {})
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InvalidInputError(f"{path}: {where}not valid YAML ({problem})") from None
    except ValueError as exc:  # a value YAML types but cannot build, e.g. the date 2025-13-45
        raise InvalidInputError(f"{path}: not valid YAML ({exc})") from None
    except RecursionError:
        raise InvalidInputError(f"{path}: nested deeper than a study file can be") from None


MAX_VALUES = 1_000_000
MAX_DEPTH = 64


def _bounded(path: Path, data: Any) -> Any:
    """``data`` if it is of a size a study file can be: YAML aliases can make a few lines a tree of
    billions of values ("billion laughs"), and checking such a tree would never end."""
    count, stack = 0, [(data, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_VALUES or depth > MAX_DEPTH:
            raise InvalidInputError(
                f"{path}: more than {MAX_VALUES} values or nested deeper than {MAX_DEPTH} levels "
                "(YAML aliases repeated?); a study file is far smaller"
            )
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children)
    return data


# The template's layout: each line a field (with its path in model.rembi.ATTRIBUTES) or a list marker.
_TEMPLATE = """\
study:
  title:
  description:
  license: CC-BY-4.0
  keywords: []
  study_type:
  authors:
    - name:
      orcid:
      affiliation:
      email:
  funding: []
  publications: []
  topics: []
study_components:
  - name:
    description:
    imaging_methods: []
    biosample: sample1
    specimen: specimen1
    acquisition: acquisition1
    files: []
    image_type: primary image
biosamples:
  - id: sample1
    organism:
    biological_entity:
    cell_types: []
    organism_parts: []
    description:
    intrinsic_variables: []
    extrinsic_variables: []
    experimental_variables: []
specimens:
  - id: specimen1
    preparation_method:
    preparation_terms: []
    signal_contrast_mechanism:
    channels:
      - name:
        content:
        biological_entity:
image_acquisitions:
  - id: acquisition1
    instrument:
    parameters:
    objective:
analysed_data: []
"""


def template() -> str:
    """A commented REMBI study file to fill in: each field says its level and what to write."""
    hints = {attribute.path: attribute for attribute in ATTRIBUTES}
    lines = [
        "# REMBI metadata for one study (Recommended Metadata for Biological Images).",
        "# Fill in what you know; 'fairimage metadata validate study.yaml' says what is wrong or missing.",
        "# Ontology terms: a CURIE (FBbi:00000251), an IRI, or the term's exact label; find them with",
        "# 'fairimage ontology search fbbi confocal' or 'fairimage ontology search ncbitaxon mouse';",
        "# topics and analysis operations are EDAM-bioimaging's ('fairimage ontology search edam tracking'),",
        "# cell types the Cell Ontology's ('... search cl astrocyte'), organs and tissues UBERON's",
        "# ('fairimage ontology search uberon liver').",
        "# What the image files say (sizes, pixel sizes, channels) is read from them: do not repeat it here.",
        "schema: fairimage-rembi/1",
    ]
    stack: list[tuple[int, str]] = []
    for raw in _TEMPLATE.splitlines():
        indent = len(raw) - len(raw.lstrip(" -"))
        key = raw.strip(" -").split(":")[0]
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = _attribute_path([*(name for _, name in stack), key], hints)
        stack.append((indent, key))
        attribute = hints.get(path)
        comment = f"  # {attribute.level}: {attribute.hint}" if attribute else ""
        lines.append(f"{raw}{comment}")
    return "\n".join(lines) + "\n"


def _attribute_path(parts: list[str], hints: dict[str, Any]) -> str:
    """``study_components.name`` -> ``study_components[].name``: the spelling, with ``[]`` after the
    parts that are lists, that the attribute table knows."""
    for marks in itertools.product(("", "[]"), repeat=len(parts) - 1):
        candidate = ".".join(part + mark for part, mark in zip(parts, (*marks, ""), strict=True))
        if candidate in hints:
            return candidate
    return ".".join(parts)


def validate(data: Any) -> Report:
    return check(data, ontology.vocabularies())


def set_metadata(repository: Repository, principal: Principal, study: str, data: Any) -> Report:
    """Check and save a study's REMBI metadata; its owner, a steward or an admin may. Wrong values are
    refused (InvalidInputError listing every one); missing attributes are allowed, the study is then
    incomplete. The change makes a new version, recorded with who and when."""
    report = validate(data)
    if report.rembi is None or report.errors:
        raise MetadataError(report)
    with repository.transaction() as session:
        row = access.governed_study(session, principal, study)
        row.rembi = report.rembi.dump()
        title = report.rembi.study.title
        if title and not row.description:
            row.description = report.rembi.study.description or ""
        audit.record(
            session,
            principal.name,
            "study.metadata",
            f"study:{row.id}",
            origin=principal.origin,
            complete=report.complete,
            missing=len(report.missing),
        )
        versions.record_version(session, principal.name, row, "REMBI metadata changed", principal.origin)
        search.index_study(session, row)
        phi.rescan(session, row)
    return report


@dataclass(frozen=True)
class ExtractedImage:
    """REMBI's Image Data, as the stored image says it (never asked of the submitter)."""

    id: str
    name: str
    file: str
    format: str
    dimensions: dict[str, int]
    physical_sizes: dict[str, dict[str, Any]]
    channels: list[str]
    dtype: str
    acquisition: dict[str, str]


@dataclass(frozen=True)
class StudyMetadata:
    study_id: str
    rembi: Rembi
    report: Report
    images: list[ExtractedImage]
    score: FairScore

    def to_dict(self) -> dict[str, Any]:
        """As the API and ``--json`` give it: what was curated, what the files said, problems, score."""
        return {
            "study_id": self.study_id,
            "rembi": self.rembi.dump(),
            "image_data": {"extracted": True, "images": [image.__dict__ for image in self.images]},
            "problems": self.report.to_dict()["problems"],
            "complete": self.report.complete,
            "fair_score": self.score.to_dict(),
        }


def get_metadata(
    repository: Repository, principal: Principal, study: str, with_images: bool = True
) -> StudyMetadata:
    """A study's REMBI metadata with its problems, the Image Data its images give, and its FAIR score. The
    record is what restricted studies show everyone; the per-image part needs read access."""
    study_id = access.find_study(repository, principal, study)
    may_read = with_images and _may_read(repository, principal, study_id)
    with repository.reading() as session:
        row = session.get(StudyRow, study_id)
        if row is None:
            raise NotFoundError(f"study {study!r} not found")
        report = validate(versions.shown_rembi(session, principal, row) or {})
        facts = _facts(session, row)
        shown = access.shown_images(principal, queries.study_images(session, study_id)) if may_read else []
        images = [_extracted(image) for image in shown]
    rembi = report.rembi or Rembi()
    score = fair_score(rembi, facts)
    return StudyMetadata(
        study_id, rembi.for_blind_review() if principal.blind else rembi, report, images, score
    )


def _may_read(repository: Repository, principal: Principal, study_id: str) -> bool:
    try:
        access.check_study(repository, principal, study_id)
    except NotFoundError:
        return False
    return True


def _facts(session: Any, row: StudyRow) -> StudyFacts:
    counts = session.execute(
        select(func.count(ImageRow.id), func.count(ImageRow.run_id)).where(ImageRow.study_id == row.id)
    ).one()
    with_sizes = sum(
        1
        for axes, scale in session.execute(
            select(ImageRow.axes, ImageRow.scale).where(ImageRow.study_id == row.id)
        )
        if _has_physical_size(axes)
    )
    published = session.scalar(
        select(func.count(StudyVersionRow.id)).where(
            StudyVersionRow.study_id == row.id, StudyVersionRow.published_at.is_not(None)
        )
    )
    return StudyFacts(
        image_count=int(counts[0]),
        images_with_physical_sizes=with_sizes,
        images_with_provenance=int(counts[1]),
        restricted=row.policy == PolicyKind.RESTRICTED.value,
        has_data_use=row.data_use is not None,
        published_versions=int(published or 0),
    )


def _has_physical_size(axes: list[dict[str, Any]]) -> bool:
    """Whether the image's space axes carry a unit (readers set one only when the file gives a size)."""
    return any(axis.get("type") == "space" and axis.get("unit") for axis in axes)


def _extracted(image: ImageRow) -> ExtractedImage:
    names = [axis["name"] for axis in image.axes]
    return ExtractedImage(
        id=image.id,
        name=image.name,
        file=image.original_file.name,
        format=image.original_file.format,
        dimensions=dict(zip(names, image.shape, strict=True)),
        physical_sizes={
            axis["name"]: {"size": size, "unit": axis.get("unit")}
            for axis, size in zip(image.axes, image.scale, strict=True)
            if axis.get("type") != "channel" and axis.get("unit")
        },
        channels=[channel.get("label") or f"channel {index}" for index, channel in enumerate(image.channels)],
        dtype=image.dtype,
        acquisition=image.acquisition or {},
    )


def prefilled(repository: Repository, principal: Principal, study: str) -> str:
    """A study file for ``study``: its REMBI metadata so far, with what its files said of their
    acquisition pre-filled where the metadata has no acquisition yet, each such value marked as extracted
    (in a comment naming the file it came from). Edit it, then 'metadata set'."""
    found = get_metadata(repository, principal, study)
    document = found.rembi.dump()
    notes: list[str] = []
    if not document.get("image_acquisitions"):
        acquisitions: dict[str, dict[str, str]] = {}  # by what they say, so images that agree share one
        sources: dict[str, list[str]] = {}
        for image in found.images:
            extracted = {
                k: v for k, v in image.acquisition.items() if k in ("instrument", "objective", "detector")
            }
            if extracted:
                key = json.dumps(extracted, sort_keys=True)
                acquisitions.setdefault(key, extracted)
                sources.setdefault(key, []).append(image.file)
        entries: list[dict[str, Any]] = []
        for index, (key, extracted) in enumerate(acquisitions.items()):
            entries.append({"id": f"acquisition{index + 1}", **extracted, "parameters": None})
            files = ", ".join(sorted(set(sources[key]))[:3])
            notes += [
                f"#   image_acquisitions[{index}].{field}: extracted from {files}" for field in extracted
            ]
        if entries:
            document["image_acquisitions"] = entries
    lines = [
        f"# REMBI metadata of the study {study!r}, as fairimage holds it. Edit it, then",
        f"# 'fairimage metadata set {study!r} FILE'; 'fairimage template rembi' shows each level.",
    ]
    if notes:
        lines += ["# Pre-filled from what the image files say (extracted, check them):", *notes]
    body = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    return "\n".join(lines) + "\n" + body
