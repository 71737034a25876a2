"""Trained models as records: registered from a bioimage.io package or a model card, immutable, each linked
to the dataset versions it was trained and evaluated on (by their PIDs), with a card and JSON-LD.

A model's record is public: people judge a model by its card. What it says of its data depends on who
reads it: a dataset the reader may read is named and linked; one they may not is never named, only counted
with the terms its data may be used under (each study's policy and consent codes), so a model trained on
data that is not public says so, to everyone. Registering needs write access and read access to every
dataset it links to; the package's files are staged, checked against their sha256 and published with the
record in one step, or not at all.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fairimage.catalog import queries
from fairimage.catalog.tables import DatasetRow, ModelDatasetRow, ModelRow, StudyRow
from fairimage.model.errors import ConflictError, InvalidInputError, NotFoundError
from fairimage.model.governance.policy import Principal, Scope
from fairimage.model.models import DataLink, Model, ModelCard, Role
from fairimage.model.study import new_id
from fairimage.services.datasets import datasets
from fairimage.services.datasets.exports import use_terms
from fairimage.services.governance import access, audit
from fairimage.services.ingest.runs import ingest_run
from fairimage.services.models.packages import read_model
from fairimage.services.repository import Repository
from fairimage.storage import layout

VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")
FAIR4ML = "https://w3id.org/fair4ml#"


def register_model(
    repository: Repository,
    principal: Principal,
    path: Path,
    trained_on: Iterable[str] = (),
    evaluated_on: Iterable[str] = (),
    changes: Mapping[str, Any] | None = None,
    attachments: Mapping[str, Path] | None = None,
) -> Model:
    """Register the model at ``path`` (a bioimage.io package or a model card); ``changes`` complete its card
    (intended_use, limitations, metrics); ``attachments`` are files stored with it by name (the weights of
    a card). InvalidInputError naming what does not fit; nothing is kept then."""
    access.require(principal, Scope.WRITE)
    with read_model(path) as read:
        card = read.card.model_copy(update={k: v for k, v in (changes or {}).items() if v})
        card = card.model_copy(
            update={
                "trained_on": [*card.trained_on, *trained_on],
                "evaluated_on": [*card.evaluated_on, *evaluated_on],
            }
        )
        if not VERSION.fullmatch(card.version):
            raise InvalidInputError(
                f"{path}: version {card.version!r}: use letters, digits, '.', '_', '+' or '-', e.g. 1.0.2"
            )
        links = _links(repository, principal, card)
        card = card.model_copy(update={"trained_on": [], "evaluated_on": []})  # kept as links, by id
        with repository.reading() as session:
            _check_new(session, card.name, card.version)
        model_id = new_id("model")
        with ingest_run(repository, principal.name) as run:
            staged = layout.staged_model_prefix(run.id, model_id)
            given = {**read.files, **(attachments or {})}
            files = {name: _stage(repository, f"{staged}/{name}", file) for name, file in given.items()}
            run.intend(model_id)
            row = ModelRow(
                id=model_id,
                name=card.name,
                version=card.version,
                kind=read.kind,
                card=card.model_dump(mode="json"),
                registered_by=principal.name,
                source_name=path.name,
                package_sha256=files[next(iter(files))]["sha256"],
                storage_key=layout.model_prefix(model_id),
                files=files,
            )
            return _publish(repository, principal, staged, row, links)


def _links(repository: Repository, principal: Principal, card: ModelCard) -> list[tuple[Role, str]]:
    """The dataset versions the card names, by id; each must be one the registering person may read."""
    links: list[tuple[Role, str]] = []
    for role, references, option in (
        ("trained", card.trained_on, "--trained-on"),
        ("evaluated", card.evaluated_on, "--evaluated-on"),
    ):
        for reference in references:
            try:
                found = datasets.find_dataset(repository, principal, reference)
            except NotFoundError:
                raise InvalidInputError(
                    f"{option} {reference}: no dataset version you may read by that id or name; give "
                    "NAME:VERSION as 'fairimage dataset list' shows it"
                ) from None
            if (role, found.id) not in links:
                links.append((role, found.id))  # type: ignore[arg-type]
    return links


def _check_new(session: Session, name: str, version: str) -> None:
    existing = session.scalars(
        select(ModelRow).where(ModelRow.name == name, ModelRow.version == version)
    ).first()
    if existing is not None:
        raise ConflictError(
            f"model {name!r} version {version} is already registered ({existing.id}); a registered "
            "model never changes: give the new one another version"
        )


def _stage(repository: Repository, key: str, path: Path) -> dict[str, Any]:
    """Store the file and check the stored copy against it, read back in pieces (weights can be large)."""
    data = path.read_bytes()
    repository.store.put(key, data)
    sha256 = hashlib.sha256(data).hexdigest()
    size = len(data)
    del data
    stored = hashlib.sha256()
    with repository.store.open(key) as copy:
        while piece := copy.read(1 << 20):
            stored.update(piece)
    if stored.hexdigest() != sha256:
        raise InvalidInputError(f"{path}: the stored copy differs from the file; try again")
    return {"size": size, "sha256": sha256}


def _publish(
    repository: Repository, principal: Principal, staged: str, row: ModelRow, links: list[tuple[Role, str]]
) -> Model:
    store = repository.store
    store.move(staged, row.storage_key)
    try:
        with repository.transaction() as session:
            _check_new(session, row.name, row.version)
            session.add(row)
            session.flush()
            session.add_all(ModelDatasetRow(model_id=row.id, dataset_id=d, role=role) for role, d in links)
            session.flush()
            audit.record(
                session,
                principal.name,
                "model.register",
                f"model:{row.id}",
                origin=principal.origin,
                name=row.name,
                version=row.version,
                kind=row.kind,
                sha256=row.package_sha256,
                datasets=[f"{role}:{d}" for role, d in links],
            )
            return _model(session, principal, row)
    except BaseException:
        store.delete(row.storage_key)
        raise


def list_models(repository: Repository, principal: Principal) -> list[Model]:
    """Every registered model, newest first, with its data as the caller may see it."""
    with repository.reading() as session:
        rows = session.scalars(select(ModelRow).order_by(ModelRow.created_at.desc(), ModelRow.id.desc()))
        return [_model(session, principal, row) for row in rows]


def get_model(repository: Repository, principal: Principal, reference: str) -> Model:
    """A model by its id (its PID), NAME@VERSION, or NAME (its newest version)."""
    with repository.reading() as session:
        return _model(session, principal, _find(session, reference))


def find_model_id(repository: Repository, reference: str) -> str | None:
    """The id of the registered model ``reference`` names, if any (to link a model's output to it)."""
    with repository.reading() as session:
        try:
            return _find(session, reference).id
        except NotFoundError:
            return None


def _find(session: Session, reference: str) -> ModelRow:
    if reference.startswith("model-"):
        row = session.get(ModelRow, reference)
    else:
        name, _, version = reference.partition("@")
        query = select(ModelRow).where(ModelRow.name == name)
        query = query.where(ModelRow.version == version) if version else query
        row = session.scalars(query.order_by(ModelRow.created_at.desc())).first()
    if row is None:
        raise NotFoundError(f"model {reference!r} not found")
    return row


def model_file(repository: Repository, principal: Principal, model_id: str, name: str) -> bytes:
    """A stored file of the model (its package.zip, rdf.yaml or card), checked against its sha256. Model
    records are public (``principal`` kept for the one signature of reads)."""
    with repository.reading() as session:
        row = _find(session, model_id)
    if name not in row.files:
        raise NotFoundError(f"model {model_id} has no file {name!r}; it has {', '.join(row.files)}")
    data = repository.store.read(layout.model_file_key(row.id, name))
    if hashlib.sha256(data).hexdigest() != row.files[name]["sha256"]:
        raise NotFoundError(f"model {model_id}: {name} no longer matches its sha256; run fixity")
    return data


def _model(session: Session, principal: Principal, row: ModelRow) -> Model:
    links = session.scalars(
        select(ModelDatasetRow)
        .where(ModelDatasetRow.model_id == row.id)
        .order_by(ModelDatasetRow.role.desc())
    )
    return Model(
        id=row.id,
        name=row.name,
        version=row.version,
        kind=row.kind,  # type: ignore[arg-type]
        card=ModelCard.model_validate(row.card),
        registered_by=row.registered_by,
        created_at=queries.aware(row.created_at),
        package_sha256=row.package_sha256,
        files=list(row.files),
        data=[_data_link(session, principal, link) for link in links],
    )


def _data_link(session: Session, principal: Principal, link: ModelDatasetRow) -> DataLink:
    dataset = session.get(DatasetRow, link.dataset_id)
    studies = [session.get(StudyRow, study_id) for study_id in (dataset.studies if dataset else [])]
    now = access.now()
    readable = dataset is not None and all(
        s is not None and access.may_read_study(principal, s) for s in studies
    )
    conditions = [
        _condition(principal, study)
        for study in studies
        if study is not None and not queries.study_policy(study).is_public(now)
    ]
    return DataLink(
        role=link.role,  # type: ignore[arg-type]
        dataset_id=link.dataset_id,
        name=dataset.name if readable and dataset else None,
        version=dataset.version if readable and dataset else None,
        public=not conditions,
        conditions=conditions,
    )


def _condition(principal: Principal, study: StudyRow) -> str:
    """A study that is not public, as a line of the card: named only where the reader may find it."""
    if access.may_discover_study(principal, study):
        return f"{study.name}: {use_terms(study)}"
    return f"a study that is not public: {use_terms(study)}"


def summary(model: Model) -> dict[str, Any]:
    """A model as plain JSON values (for --json and agents), with what its card says of its data."""
    return {
        **{key: value for key, value in asdict(model).items() if key != "card"},
        "card": model.card.model_dump(mode="json"),
        "trained_on_public_data": model.trained_on_public_data,
        "training_data": model.training_data_statement,
    }


def model_jsonld(model: Model, base_url: str) -> dict[str, Any]:
    """schema.org JSON-LD in RDA FAIR4ML's terms: an fair4ml:MLModel with its data by PID."""
    base = base_url.rstrip("/")
    card = model.card

    def datasets_of(role: str) -> list[dict[str, Any]]:
        here = [
            {
                "@id": f"{base}/pid/{link.dataset_id}",
                "@type": "Dataset",
                **({"name": f"{link.name} v{link.version}"} if link.name else {}),
                **({"conditionsOfAccess": "; ".join(link.conditions)} if link.conditions else {}),
            }
            for link in model.data
            if link.role == role
        ]
        elsewhere = [
            {"@id": peer.url, "@type": "Dataset", "identifier": peer.dataset, "provider": peer.node}
            for peer in (card.trained_on_peers if role == "trained" else [])
        ]
        return here + elsewhere

    document: dict[str, Any] = {
        "@context": {"@vocab": "https://schema.org/", "fair4ml": FAIR4ML},
        "@id": f"{base}/pid/{model.id}",
        "@type": ["fair4ml:MLModel", "SoftwareApplication"],
        "identifier": model.id,
        "name": card.name,
        "version": card.version,
        "description": card.description,
        "url": f"{base}/models/{model.id}",
        "dateCreated": model.created_at.isoformat() if model.created_at else None,
        "author": [
            {
                "@type": "Person",
                "name": a.name,
                **({"@id": f"https://orcid.org/{a.orcid}"} if a.orcid else {}),
            }
            for a in card.authors
        ],
        "license": card.license,
        "fair4ml:mlTask": card.task,
        "fair4ml:intendedUse": card.intended_use,
        "fair4ml:modelRisksBiasLimitations": card.limitations,
        "fair4ml:trainedOn": datasets_of("trained"),
        "fair4ml:evaluatedOn": datasets_of("evaluated"),
        "fair4ml:evaluationMetrics": [f"{name}: {value}" for name, value in card.metrics.items()],
        "codeRepository": card.training.code,
        "distribution": [
            {
                "@type": "DataDownload",
                "name": name,
                "contentUrl": f"{base}/api/models/{model.id}/files/{name}",
            }
            for name in model.files
        ],
        "conditionsOfAccess": model.training_data_statement,
    }
    return {key: value for key, value in document.items() if value not in (None, [], "")}
