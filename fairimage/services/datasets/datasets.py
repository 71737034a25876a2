"""Datasets for machine learning, drawn from studies: immutable numbered versions of (image, label, split).

``create_dataset`` takes the images of the studies (with the label of a given name, where asked), groups them
by a key that must not be on two sides of a split (the plate, the well, the patient, an annotation such as
a donor), stratifies by another (a control type, a compound, an annotation), and assigns the splits with a
seed; AI-generated items (an image or a label a model made) are left out unless asked for, and everything
left out is counted. ``check_dataset`` proves any version leak-free: no group in two splits, no pixels in
two splits (by a hash of the full-resolution chunks, whatever the group keys say), and shows the balance.

Only someone who may read every study of a dataset may create it or read it (restricted studies included:
their readers are those granted access); others get a 404, as for the studies themselves.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fairimage.catalog import queries
from fairimage.catalog.tables import (
    AnnotationRow,
    DatasetItemRow,
    DatasetRow,
    ImageRow,
    LabelRow,
    StudyRow,
    WellRow,
)
from fairimage.model.datasets.splits import (
    CheckedItem,
    Item,
    SplitReport,
    assign_splits,
    check_splits,
    parse_split,
)
from fairimage.model.errors import ForbiddenError, InvalidInputError, NotFoundError
from fairimage.model.governance.policy import Principal, Role, Scope
from fairimage.model.study import new_id
from fairimage.services.governance import access, audit
from fairimage.services.governance.fixity import pixel_hash
from fairimage.services.repository import Repository

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# What people write on a dataset's card; the rest of it is drawn from the catalog.
NOTES = ("description", "intended_uses", "limitations", "biases")
BUILT_IN_KEYS = ("image", "study", "plate", "well", "patient", "control", "compound")
PATIENT_ID = "00100020"  # DICOM PatientID, as de-identification left it (a pseudonym)


@dataclass(frozen=True)
class DatasetRequest:
    name: str
    studies: tuple[str, ...]
    split: str = "70/15/15"
    group_by: str = "image"
    stratify: str | None = None
    label: str | None = None  # only images with a label of this name, each with it
    seed: int = 0
    include_generated: bool = False


@dataclass(frozen=True)
class DatasetItem:
    image_id: str
    label_id: str | None
    split: str
    group: str
    stratum: str
    content_sha256: str | None
    ai_generated: bool


@dataclass
class Dataset:
    id: str
    name: str
    version: int
    created_by: str
    created_at: datetime | None
    studies: list[str]
    parameters: dict[str, Any]
    excluded: dict[str, int]
    counts: dict[str, int]  # items per split
    items: list[DatasetItem] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)  # what people wrote on its card (NOTES)


def create_dataset(repository: Repository, principal: Principal, request: DatasetRequest) -> Dataset:
    """Make the next version of dataset ``request.name``; InvalidInputError naming what does not fit."""
    access.require(principal, Scope.WRITE)
    if not NAME.fullmatch(request.name):
        raise InvalidInputError(
            f"dataset name {request.name!r}: use letters, digits, '.', '_' or '-', starting with a letter or "
            "digit"
        )
    if not request.studies:
        raise InvalidInputError("a dataset needs at least one study: --from STUDY")
    proportions = parse_split(request.split)
    _check_key(request.group_by, "--group-by")
    if request.stratify is not None:
        _check_key(request.stratify, "--stratify")
    study_ids = list(dict.fromkeys(access.check_study(repository, principal, s) for s in request.studies))
    with repository.reading() as session:
        images = [
            image
            for study_id in study_ids
            for image in access.shown_images(principal, queries.study_images(session, study_id))
        ]
        labels = _labels(session, [image.id for image in images], request.label)
        keys = _Keys(session, images)
        excluded = {"without the label": 0, "AI-generated": 0}
        chosen: list[tuple[ImageRow, LabelRow | None]] = []
        for image in images:
            label = labels.get(image.id)
            if request.label is not None and label is None:
                excluded["without the label"] += 1
            elif _generated(image, label) and not request.include_generated:
                excluded["AI-generated"] += 1
            else:
                chosen.append((image, label))
        if not chosen:
            raise InvalidInputError(
                f"dataset {request.name}: no images left to put in it ({_said(excluded)})"
            )
        items = [
            Item(
                image.id,
                keys.value(image, request.group_by, "--group-by"),
                keys.stratum(image, request.stratify),
            )
            for image, _ in chosen
        ]
        manifests = {image.id: (image.manifest_key, str(image.levels[0]["path"])) for image, _ in chosen}
    splits = assign_splits(items, proportions, request.seed)
    contents = {image_id: pixel_hash(repository, key, level) for image_id, (key, level) in manifests.items()}
    parameters = {
        "split": str(proportions),
        "splits": list(proportions.names),
        "group_by": request.group_by,
        "stratify": request.stratify,
        "label": request.label,
        "seed": request.seed,
        "include_generated": request.include_generated,
    }
    by_image = {item.key: item for item in items}
    with repository.transaction() as session:
        version = (
            session.scalar(select(func.max(DatasetRow.version)).where(DatasetRow.name == request.name)) or 0
        ) + 1
        row = DatasetRow(
            id=new_id("ds"),
            name=request.name,
            version=version,
            created_by=principal.name,
            studies=study_ids,
            parameters=parameters,
            excluded={reason: count for reason, count in excluded.items() if count},
            item_count=len(chosen),
        )
        session.add(row)
        session.flush()
        session.add_all(
            DatasetItemRow(
                dataset_id=row.id,
                image_id=image.id,
                label_id=label.id if label is not None else None,
                split=splits[image.id],
                group_key=by_image[image.id].group,
                stratum=by_image[image.id].stratum,
                content_sha256=contents[image.id],
                ai_generated=_generated(image, label),
            )
            for image, label in chosen
        )
        session.flush()
        audit.record(
            session,
            principal.name,
            "dataset.create",
            f"dataset:{row.id}",
            origin=principal.origin,
            name=request.name,
            version=version,
            studies=study_ids,
            items=len(chosen),
            parameters=parameters,
        )
        return _dataset(session, row, with_items=True)


def _generated(image: ImageRow, label: LabelRow | None) -> bool:
    """Whether a model made the image, or its label: an AI-generated item."""
    return image.generated is not None or (label is not None and label.made_by_kind == "model")


def list_datasets(repository: Repository, principal: Principal) -> list[Dataset]:
    """Every dataset version the caller may read (all of its studies), newest version of each name first."""
    with repository.reading() as session:
        rows = session.scalars(select(DatasetRow).order_by(DatasetRow.name, DatasetRow.version.desc()))
        return [_dataset(session, row) for row in rows if _readable(session, principal, row)]


def get_dataset(
    repository: Repository,
    principal: Principal,
    name: str,
    version: int | None = None,
    with_items: bool = True,
) -> Dataset:
    """A dataset's version (the latest without ``version``), if the caller may read all of its studies."""
    with repository.reading() as session:
        query = select(DatasetRow).where(DatasetRow.name == name)
        query = query.where(DatasetRow.version == version) if version is not None else query
        row = session.scalars(query.order_by(DatasetRow.version.desc())).first()
        if row is None or not _readable(session, principal, row):
            which = f" version {version}" if version is not None else ""
            raise NotFoundError(f"dataset {name!r}{which} not found")
        return _dataset(session, row, with_items)


def describe_dataset(
    repository: Repository,
    principal: Principal,
    name: str,
    version: int | None,
    changes: Mapping[str, str | None],
) -> Dataset:
    """Write on a version's card (NOTES: its description, intended uses, limitations, biases; "" clears
    one). Its maker, a steward or an admin may; its items never change. Each edit is in the audit log."""
    access.require(principal, Scope.WRITE)
    unknown = sorted(set(changes) - set(NOTES))
    if unknown:
        raise InvalidInputError(
            f"dataset card: {unknown[0]} is not a field people write; use {', '.join(NOTES)}"
        )
    with repository.transaction() as session:
        found = get_dataset(repository, principal, name, version, with_items=False)
        row = session.get(DatasetRow, found.id)
        if row is None:
            raise NotFoundError(f"dataset {name!r} not found")
        if row.created_by != principal.name and principal.role not in (Role.STEWARD, Role.ADMIN):
            raise ForbiddenError(
                f"dataset {name} version {row.version}: only its maker ({row.created_by}), a steward or an "
                "admin may edit its card"
            )
        given = {key: value.strip() for key, value in changes.items() if value is not None}
        notes = {
            key: value for key, value in {**(row.notes or {}), **given}.items() if key in NOTES and value
        }
        row.notes = notes | {"edited_by": principal.name, "edited_at": datetime.now(UTC).isoformat()}
        audit.record(
            session,
            principal.name,
            "dataset.describe",
            f"dataset:{row.id}",
            origin=principal.origin,
            fields=sorted(changes),
        )
        session.flush()
        return _dataset(session, row, with_items=True)


def find_dataset(repository: Repository, principal: Principal, reference: str) -> Dataset:
    """The dataset version ``reference`` names: its id (ds-…, its PID), NAME:VERSION, or NAME (the latest)."""
    with repository.reading() as session:
        row = session.get(DatasetRow, reference)  # an id; a name may look like one ("ds-tumours")
        if row is not None:
            if not _readable(session, principal, row):
                raise NotFoundError(f"dataset {reference!r} not found")
            return _dataset(session, row)
    name, _, version = reference.partition(":")
    if version and not version.isdigit():
        raise InvalidInputError(
            f"dataset {reference!r}: give NAME:VERSION with a version number, e.g. {name}:1"
        )
    return get_dataset(repository, principal, name, int(version) if version else None, with_items=False)


def check_dataset(
    repository: Repository, principal: Principal, name: str, version: int | None = None
) -> tuple[Dataset, SplitReport]:
    """A version and what ``check_splits`` finds in it: leaks, duplicates across splits, the balance."""
    dataset = get_dataset(repository, principal, name, version)
    report = check_splits(
        [CheckedItem(i.image_id, i.split, i.group, i.stratum, i.content_sha256) for i in dataset.items]
    )
    return dataset, report


def _readable(session: Session, principal: Principal, row: DatasetRow) -> bool:
    studies = [session.get(StudyRow, study_id) for study_id in row.studies]
    return all(study is not None and access.may_read_study(principal, study) for study in studies)


def _dataset(session: Session, row: DatasetRow, with_items: bool = False) -> Dataset:
    counts = dict(
        session.execute(
            select(DatasetItemRow.split, func.count())
            .where(DatasetItemRow.dataset_id == row.id)
            .group_by(DatasetItemRow.split)
        ).all()
    )
    items = []
    if with_items:
        rows = session.scalars(
            select(DatasetItemRow)
            .where(DatasetItemRow.dataset_id == row.id)
            .order_by(DatasetItemRow.image_id)
        )
        items = [
            DatasetItem(
                r.image_id, r.label_id, r.split, r.group_key, r.stratum, r.content_sha256, r.ai_generated
            )
            for r in rows
        ]
    names = row.parameters.get("splits", [])
    return Dataset(
        id=row.id,
        name=row.name,
        version=row.version,
        created_by=row.created_by,
        created_at=queries.aware(row.created_at),
        studies=list(row.studies),
        parameters=dict(row.parameters),
        excluded=dict(row.excluded),
        counts={name: int(counts.get(name, 0)) for name in names},
        items=items,
        notes=dict(row.notes or {}),
    )


def _check_key(key: str, option: str) -> None:
    if key in BUILT_IN_KEYS or (key.startswith("annotation:") and len(key) > len("annotation:")):
        return
    raise InvalidInputError(
        f"{option} {key}: use one of {', '.join(BUILT_IN_KEYS)} or annotation:KEY (an image annotation, "
        "e.g. annotation:donor)"
    )


def _labels(session: Session, image_ids: list[str], name: str | None) -> dict[str, LabelRow]:
    if name is None or not image_ids:
        return {}
    rows = session.scalars(select(LabelRow).where(LabelRow.name == name, LabelRow.image_id.in_(image_ids)))
    return {row.image_id: row for row in rows}


class _Keys:
    """The values of grouping and stratum keys for a set of images, read once."""

    def __init__(self, session: Session, images: list[ImageRow]) -> None:
        ids = [image.id for image in images]
        self._annotations: dict[tuple[str, str], str] = {}
        for annotation in (
            session.scalars(
                select(AnnotationRow).where(AnnotationRow.image_id.in_(ids), AnnotationRow.kind == "map")
            )
            if ids
            else []
        ):
            self._annotations.setdefault((str(annotation.image_id), annotation.key), annotation.value)
        plates = {image.plate_id for image in images if image.plate_id}
        self._wells: dict[tuple[str, str, str], WellRow] = {
            (w.plate_id, w.row, w.column): w
            for w in (session.scalars(select(WellRow).where(WellRow.plate_id.in_(plates))) if plates else [])
        }

    def value(self, image: ImageRow, key: str, option: str) -> str:
        """The image's value of ``key``; InvalidInputError naming the image where it has none."""
        found = self._find(image, key)
        if found is None:
            raise InvalidInputError(f"{option} {key}: image {image.id} has no {_what(key)}; {_fix(key)}")
        return found

    def stratum(self, image: ImageRow, key: str | None) -> str:
        if key is None:
            return ""
        return self._find(image, key) or "(none)"

    def _find(self, image: ImageRow, key: str) -> str | None:
        if key == "image":
            return image.id
        if key == "study":
            return image.study_id
        if key == "plate":
            return image.plate_id
        if key == "well":
            return f"{image.plate_id}/{image.well_row}{image.well_column}" if image.plate_id else None
        if key == "patient":
            value = ((image.dicom or {}).get(PATIENT_ID) or {}).get("Value") or [None]
            return str(value[0]) if value[0] not in (None, "") else None
        if key in ("control", "compound"):
            well = self._wells.get((str(image.plate_id), str(image.well_row), str(image.well_column)))
            return getattr(well, key) if well is not None else None
        return self._annotations.get((image.id, key.removeprefix("annotation:")))


def _what(key: str) -> str:
    described: dict[str, str] = {
        "plate": "plate",
        "well": "well",
        "patient": "DICOM patient id",
        "control": "control type in its plate's platemap",
        "compound": "compound in its plate's platemap",
    }
    return described.get(key, f"annotation {key.removeprefix('annotation:')!r}")


def _fix(key: str) -> str:
    if key.startswith("annotation:"):
        name = key.removeprefix("annotation:")
        return f"annotate it (fairimage annotate IMAGE {name}=VALUE) or group by another key"
    return "group by another key (image, study or annotation:KEY)"


def _said(excluded: dict[str, int]) -> str:
    left = [f"{count} {reason}" for reason, count in excluded.items() if count]
    return "left out: " + ", ".join(left) if left else "the studies have no images"
