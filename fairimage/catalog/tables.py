"""Catalog tables. Image layout details (axes, levels, channels) are JSON: read whole, never queried."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from fairimage.model.plates.platemap import Treatment


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    email: Mapped[str] = mapped_column(String(255), default="")
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)  # Argon2id, never clear
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Who the user is at an OpenID Connect provider (its issuer and their stable subject there), for users
    # who sign in with one; and their ORCID iD (0000-0002-1825-0097), from that provider or an admin.
    oidc_issuer: Mapped[str | None] = mapped_column(String(255), nullable=True)
    oidc_subject: Mapped[str | None] = mapped_column(String(255), nullable=True)
    orcid: Mapped[str | None] = mapped_column(String(19), nullable=True)

    __table_args__ = (UniqueConstraint("oidc_issuer", "oidc_subject", name="uq_users_oidc_identity"),)


class TokenRow(Base):
    """An API token: only the sha256 of its secret is kept (secrets are 256 random bits, so a fast hash
    cannot be brute-forced; Argon2 is for passwords, which people choose)."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    scope: Mapped[str] = mapped_column(String(10))
    note: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    user: Mapped[UserRow] = relationship()


class StudyRow(Base):
    __tablename__ = "studies"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    owner_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True, index=True)
    policy: Mapped[str] = mapped_column(String(20), default="public")
    embargo_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    data_use: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # model.duo.DataUse
    rembi: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # model.rembi.Rembi
    quarantined: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # uncleared images
    # What the PHI scanner found in the study's text ({"findings": [...], "acknowledged": {...} | None}).
    phi: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # The QC thresholds the study sets apart from the defaults ({"saturated_percent": 1.0, ...}).
    qc_thresholds: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # A copy of another node's study (its PID there): served read-only, changed only at its origin.
    mirror_of: Mapped[str | None] = mapped_column(String(1024), nullable=True)

    images: Mapped[list[ImageRow]] = relationship(back_populates="study")


class OriginalFileRow(Base):
    """A file (or OME-Zarr folder) as it was given to ingest, identified by its content."""

    __tablename__ = "original_files"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id"), index=True)
    name: Mapped[str] = mapped_column(String(1024))
    source_path: Mapped[str] = mapped_column(Text)
    format: Mapped[str] = mapped_column(String(40))
    size: Mapped[int] = mapped_column(BigInteger, index=True)  # ingest asks whether any has a file's size
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    kept: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)  # its encrypted originals' keys

    images: Mapped[list[ImageRow]] = relationship(back_populates="original_file")


class ImageRow(Base):
    """One stored OME-Zarr image: a series of an original file."""

    __tablename__ = "images"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id"), index=True)
    file_id: Mapped[str] = mapped_column(ForeignKey("original_files.id"), index=True)
    name: Mapped[str] = mapped_column(String(1024))
    series_index: Mapped[int] = mapped_column(Integer, default=0)
    axes: Mapped[list[Any]] = mapped_column(JSON)  # [{"name", "type", "unit"}]
    shape: Mapped[list[Any]] = mapped_column(JSON)
    dtype: Mapped[str] = mapped_column(String(20))  # as stored
    source_dtype: Mapped[str] = mapped_column(String(20))
    scale: Mapped[list[Any]] = mapped_column(JSON)
    channels: Mapped[list[Any]] = mapped_column(JSON)
    levels: Mapped[list[Any]] = mapped_column(JSON)  # [{"path", "shape", "chunks", "scale"}]
    storage_key: Mapped[str] = mapped_column(String(255))
    manifest_key: Mapped[str] = mapped_column(String(255))
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    stored_bytes: Mapped[int] = mapped_column(BigInteger)
    object_count: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    run_id: Mapped[str | None] = mapped_column(ForeignKey("ingest_runs.id"), nullable=True, index=True)
    acquisition: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # from the file
    dicom: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # de-identified DICOM header
    # Why its pixels may show identifying text, and who cleared it ({"reasons": [...], "cleared_by": ...}).
    quarantine: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # A field of a high-content screening plate: the plate, its well (row and column names) and field.
    plate_id: Mapped[str | None] = mapped_column(ForeignKey("plates.id"), nullable=True, index=True)
    well_row: Mapped[str | None] = mapped_column(String(4), nullable=True)
    well_column: Mapped[str | None] = mapped_column(String(4), nullable=True)
    field: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # A registered image: the root (folder, .ozx, http(s):// or s3:// URL) its storage_key is relative to;
    # None for images in the repository's own store.
    location: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Made by a model ({"by": MODEL, "from_images": [...]}): AI-generated; None for acquired images.
    generated: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    mirror_of: Mapped[str | None] = mapped_column(String(1024), nullable=True)  # its PID at its origin

    study: Mapped[StudyRow] = relationship(back_populates="images")
    original_file: Mapped[OriginalFileRow] = relationship(back_populates="images")


class LabelRow(Base):
    """A label image of an image (OME-NGFF ``labels/NAME``): integer object ids on the image's pixel grid,
    made by a person (``made_by_kind`` "person", the annotator) or a model ("model": AI-generated)."""

    __tablename__ = "labels"
    __table_args__ = (UniqueConstraint("image_id", "name", name="uq_labels_image_name"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    image_id: Mapped[str] = mapped_column(ForeignKey("images.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    made_by_kind: Mapped[str] = mapped_column(String(16))
    made_by: Mapped[str] = mapped_column(String(255))
    added_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    source_name: Mapped[str] = mapped_column(String(1024))  # the mask file it came from
    source_sha256: Mapped[str] = mapped_column(String(64))
    dtype: Mapped[str] = mapped_column(String(20))
    axes: Mapped[list[Any]] = mapped_column(JSON)
    shape: Mapped[list[Any]] = mapped_column(JSON)
    levels: Mapped[list[Any]] = mapped_column(JSON)
    label_values: Mapped[list[Any]] = mapped_column(JSON)  # the ids present, 0 (background) excluded
    image_label: Mapped[dict[str, Any]] = mapped_column(JSON)  # OME-NGFF image-label: colours, properties
    storage_key: Mapped[str] = mapped_column(String(255))
    manifest_key: Mapped[str] = mapped_column(String(255))
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    stored_bytes: Mapped[int] = mapped_column(BigInteger)
    object_count: Mapped[int] = mapped_column(Integer)


class DatasetRow(Base):
    """One version of a dataset for machine learning (immutable once made): the studies it was drawn from,
    how (label, split proportions, group and stratum keys, seed) and what was left out."""

    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_datasets_name_version"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    studies: Mapped[list[Any]] = mapped_column(JSON)  # study ids
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    excluded: Mapped[dict[str, Any]] = mapped_column(JSON)  # why images were left out, and how many
    item_count: Mapped[int] = mapped_column(Integer)
    # what people wrote on its card (description, intended_uses, limitations, biases, edited_by, edited_at)
    notes: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class DatasetItemRow(Base):
    """An image of a dataset version, its label (where the dataset has labels) and its split."""

    __tablename__ = "dataset_items"

    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id"), primary_key=True)
    image_id: Mapped[str] = mapped_column(ForeignKey("images.id"), primary_key=True)
    label_id: Mapped[str | None] = mapped_column(ForeignKey("labels.id"), nullable=True)
    split: Mapped[str] = mapped_column(String(16))
    group_key: Mapped[str] = mapped_column(String(255))
    stratum: Mapped[str] = mapped_column(String(255))
    content_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ai_generated: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")


class PlateRow(Base):
    """A high-content screening plate: its geometry, acquisitions and where its group documents are stored;
    its fields are images (``ImageRow.plate_id``)."""

    __tablename__ = "plates"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    rows: Mapped[list[Any]] = mapped_column(JSON)  # row names, "A", "B", ...
    columns: Mapped[list[Any]] = mapped_column(JSON)  # column names, "1", "2", ...
    acquisitions: Mapped[list[Any]] = mapped_column(JSON)  # [{"id", "name", "starttime", "endtime"}]
    channels: Mapped[list[Any]] = mapped_column(JSON)  # [{"name", "emission", "excitation"}]
    field_count: Mapped[int] = mapped_column(Integer)
    source: Mapped[dict[str, Any]] = mapped_column(JSON)  # {"layout": "imagexpress", "folder": ...}
    missing: Mapped[list[Any]] = mapped_column(JSON)  # expected wells/fields that had no files
    storage_key: Mapped[str] = mapped_column(String(255))
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    run_id: Mapped[str | None] = mapped_column(ForeignKey("ingest_runs.id"), nullable=True, index=True)
    location: Mapped[str | None] = mapped_column(Text, nullable=True)  # a registered plate's root


class WellRow(Base):
    """A well of a plate and what the platemap says was done to it."""

    __tablename__ = "wells"

    plate_id: Mapped[str] = mapped_column(ForeignKey("plates.id"), primary_key=True)
    row: Mapped[str] = mapped_column(String(4), primary_key=True)
    column: Mapped[str] = mapped_column(String(4), primary_key=True)
    compound: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    concentration: Mapped[float | None] = mapped_column(nullable=True)
    concentration_unit: Mapped[str | None] = mapped_column(String(20), nullable=True)
    control: Mapped[str | None] = mapped_column(String(20), nullable=True, index=True)
    replicate: Mapped[int | None] = mapped_column(Integer, nullable=True)
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # the platemap's other columns

    @classmethod
    def treated(cls, plate_id: str, row: str, column: str, treatment: Treatment | None) -> WellRow:
        """A well and what its platemap entry (if any) says was done to it."""
        if treatment is None:
            return cls(plate_id=plate_id, row=row, column=column)
        return cls(
            plate_id=plate_id,
            row=row,
            column=column,
            compound=treatment.compound,
            concentration=treatment.concentration,
            concentration_unit=treatment.unit,
            control=treatment.control,
            replicate=treatment.replicate,
            extra=treatment.extra or None,
        )


class QcReportRow(Base):
    """A quality-control run over a plate: its thresholds, the plate's statistics and every field's
    measures and flags (JSON, read whole), with the figures people search for as columns."""

    __tablename__ = "qc_reports"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    plate_id: Mapped[str] = mapped_column(ForeignKey("plates.id"), index=True)
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    actor: Mapped[str] = mapped_column(String(255))
    z_prime: Mapped[float | None] = mapped_column(nullable=True, index=True)
    flagged_fields: Mapped[int] = mapped_column(Integer, default=0)
    plate_flags: Mapped[list[Any]] = mapped_column(JSON)
    thresholds: Mapped[dict[str, Any]] = mapped_column(JSON)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)  # plate statistics, readout, per-well summaries
    fields: Mapped[list[Any]] = mapped_column(JSON)  # per field and channel: image, measures, flags


class JobRow(Base):
    """Long work started over HTTP, run by one server process (``runner``: host and pid) in the
    background; any process reads its status, progress (``done`` of ``total``) and result here."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))  # "plate.qc", "register.verify"
    target: Mapped[str] = mapped_column(String(255))  # the plate or image it works on
    study_id: Mapped[str | None] = mapped_column(ForeignKey("studies.id"), nullable=True, index=True)
    actor: Mapped[str] = mapped_column(String(255), index=True)
    status: Mapped[str] = mapped_column(String(20))  # queued, running, done, failed
    done: Mapped[int] = mapped_column(BigInteger, default=0)
    total: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    runner: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ShareLinkRow(Base):
    """Read-only access to one study for whoever holds the link's secret (only its sha256 is kept), until
    it expires or is revoked; made by someone who governs the study."""

    __tablename__ = "share_links"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id"), index=True)
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str] = mapped_column(String(255))
    note: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    blind: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")  # double-blind review
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)  # one version of the study, or all
    max_uses: Mapped[int | None] = mapped_column(Integer, nullable=True)  # client addresses it may serve


class ShareLinkUseRow(Base):
    """A client address a share link has served: each one is a use (links limited to N uses serve N)."""

    __tablename__ = "share_link_uses"

    link_id: Mapped[str] = mapped_column(ForeignKey("share_links.id"), primary_key=True)
    origin: Mapped[str] = mapped_column(String(255), primary_key=True)
    used_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class GrantRow(Base):
    """Access to one study for one user or every member of one group: given by the owner or a steward (or
    an approved access request), until it expires or is revoked; a revoked grant stops working at the next
    request."""

    __tablename__ = "grants"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id"), index=True)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True, index=True)
    group_id: Mapped[str | None] = mapped_column(ForeignKey("groups.id"), nullable=True, index=True)
    granted_by: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class IngestRunRow(Base):
    """One ``fairimage ingest``: the PROV activity that generated its images (who, when, with which
    software and parameters). Recorded with the first file it publishes."""

    __tablename__ = "ingest_runs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    actor: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    software: Mapped[dict[str, Any]] = mapped_column(JSON)  # {"fairimage": "0.1.0", "zarr": ...}
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON)  # chunking, codec, cluster ...


class StudyVersionRow(Base):
    """An immutable version of a study: its metadata and the manifest of its images with their checksums
    (``content``, model.version.VersionContent), hashed; ``published_at`` once it is frozen for citing."""

    __tablename__ = "study_versions"
    __table_args__ = (UniqueConstraint("study_id", "number", name="uq_study_versions_number"),)

    id: Mapped[str] = mapped_column(String(60), primary_key=True)  # "{study id}.v{number}", a PID
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(255))
    note: Mapped[str] = mapped_column(Text, default="")
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    content_sha256: Mapped[str] = mapped_column(String(64))
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    published_by: Mapped[str | None] = mapped_column(String(255), nullable=True)


class GroupRow(Base):
    """A named set of users (a lab, a consortium) that a grant can name instead of one user."""

    __tablename__ = "groups"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class GroupMemberRow(Base):
    __tablename__ = "group_members"

    group_id: Mapped[str] = mapped_column(ForeignKey("groups.id"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)


class AnnotationRow(Base):
    """A key=value annotation (``kind`` "map") or a tag (``kind`` "tag", its text in ``value``) on a study
    (``image_id`` null) or one of its images."""

    __tablename__ = "annotations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id"), index=True)
    image_id: Mapped[str | None] = mapped_column(ForeignKey("images.id"), nullable=True, index=True)
    kind: Mapped[str] = mapped_column(String(10))
    key: Mapped[str] = mapped_column(String(255))
    value: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SearchGroupRow(Base):
    """Images of one study that share their study's and component's text and their facet signature: the
    text kept once, with how many images share it (full-text twins as for documents, migration 0009)."""

    __tablename__ = "search_groups"

    group_key: Mapped[str] = mapped_column(String(32), primary_key=True)
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id"), index=True)
    signature: Mapped[str] = mapped_column(String(32), index=True)
    body: Mapped[str] = mapped_column(Text)
    images: Mapped[int] = mapped_column(Integer)


class SearchDocumentRow(Base):
    """An image in the search index: its group and its own words (its full-text twin is FTS5 on SQLite, a
    tsvector column on PostgreSQL, made by migration 0009)."""

    __tablename__ = "search_documents"

    image_id: Mapped[str] = mapped_column(ForeignKey("images.id"), primary_key=True)
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id"), index=True)
    signature: Mapped[str] = mapped_column(String(32), index=True)  # its facet values' signature
    group_key: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)


class SearchSignatureRow(Base):
    """One facet value of a signature (the set of facet values images share); ``direct`` is False for the
    ancestors of the term the metadata names (they admit an image to a filter but are not counted)."""

    __tablename__ = "search_signatures"

    signature: Mapped[str] = mapped_column(String(32), primary_key=True)
    facet: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(String(255), primary_key=True)
    direct: Mapped[bool] = mapped_column(Boolean)


class AuditRow(Base):
    """One entry of the append-only audit log; ``entry_hash`` chains it to the entry before it."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[str] = mapped_column(String(40))  # ISO 8601 UTC text, hashed exactly as stored
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(80), index=True)
    target: Mapped[str] = mapped_column(String(1024))
    decision: Mapped[str] = mapped_column(String(20))
    origin: Mapped[str] = mapped_column(String(255))
    details: Mapped[str] = mapped_column(Text)  # canonical JSON text, hashed exactly as stored
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))


class AuditHeadRow(Base):
    """The chain's head (one row): appending updates it first, so concurrent appends queue up, and a
    deleted last entry no longer matches it."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    entry_hash: Mapped[str] = mapped_column(String(64))


class AccessRequestRow(Base):
    """A user's request to read a restricted study, with its research purpose and the DUO assessment of
    that purpose against the study's consent; a steward approves it (making a grant) or denies it."""

    __tablename__ = "access_requests"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    purpose: Mapped[dict[str, Any]] = mapped_column(JSON)  # model.duo.ResearchPurpose
    assessment: Mapped[dict[str, Any]] = mapped_column(JSON)  # model.duo.Match
    state: Mapped[str] = mapped_column(String(20), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    decision_note: Mapped[str] = mapped_column(Text, default="")
    grant_id: Mapped[str | None] = mapped_column(ForeignKey("grants.id"), nullable=True)


class WebSessionRow(Base):
    """A signed-in browser: the cookie holds a random secret, the catalog only its sha256."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    origin: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    user: Mapped[UserRow] = relationship()


class OidcSignInRow(Base):
    """A sign-in begun with an OpenID Connect provider and not yet finished: what the browser's callback
    must match (state) and what only this server knows (nonce, PKCE verifier). The browser's cookie holds a
    random secret; the catalog only its sha256. Used once: ``used_at`` is set when the callback arrives."""

    __tablename__ = "oidc_sign_ins"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the cookie's secret
    state: Mapped[str] = mapped_column(String(128))
    nonce: Mapped[str] = mapped_column(String(128))
    code_verifier: Mapped[str] = mapped_column(String(128))
    redirect_uri: Mapped[str] = mapped_column(String(1024))
    next_path: Mapped[str] = mapped_column(String(1024), default="/")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ModelRow(Base):
    """A trained model (immutable once registered): its card, as a bioimage.io package or a card of our own,
    and the stored files (the package, with the sha256 of each)."""

    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_models_name_version"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    version: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # "bioimageio" or "card"
    card: Mapped[dict[str, Any]] = mapped_column(JSON)  # model.models.ModelCard
    registered_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    source_name: Mapped[str] = mapped_column(String(255))
    package_sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(255))
    files: Mapped[dict[str, Any]] = mapped_column(JSON)  # stored file name -> {"size", "sha256"}


class ModelDatasetRow(Base):
    """A dataset version a model was trained or evaluated on."""

    __tablename__ = "model_datasets"

    model_id: Mapped[str] = mapped_column(ForeignKey("models.id"), primary_key=True)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(16), primary_key=True)  # "trained" or "evaluated"


class PeerRow(Base):
    """Another fairimage node this one federates with: its address, and the signing key pinned when it was
    added (everything it sends is checked against that key); where harvesting it got to."""

    __tablename__ = "peers"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)  # what it is called here
    node_name: Mapped[str] = mapped_column(String(64), default="")  # what it calls itself (signs as)
    url: Mapped[str] = mapped_column(String(1024), unique=True)
    public_key: Mapped[str] = mapped_column(String(64), unique=True)  # base64 of the raw Ed25519 key
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    added_by: Mapped[str] = mapped_column(String(255))
    cursor: Mapped[str] = mapped_column(String(64), default="")  # the change feed's, after the last page kept
    harvested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")


class HarvestedStudyRow(Base):
    """A study another node publishes, as harvested from it: kept apart from this node's studies, never
    edited here, replaced when the peer's feed says it changed and dropped when it says it is gone."""

    __tablename__ = "harvested_studies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    peer: Mapped[str] = mapped_column(ForeignKey("peers.name"), index=True)
    pid: Mapped[str] = mapped_column(String(1024), unique=True)  # its persistent identifier at its node
    pid_sha256: Mapped[str] = mapped_column(String(64), unique=True)  # how its node's feed says it is gone
    origin_id: Mapped[str] = mapped_column(String(40))  # its id at its node
    access: Mapped[str] = mapped_column(String(20))  # "public", or "restricted": a title and conditions only
    title: Mapped[str] = mapped_column(Text)
    images: Mapped[int] = mapped_column(Integer, default=0)
    record: Mapped[dict[str, Any]] = mapped_column(JSON)  # model.federation.feed.StudyRecord
    stamp: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # when it last changed at its node
    harvested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class HarvestedGroupRow(Base):
    """Images of a harvested study that share their text and facet values, as its node's search index
    groups them (their full-text twin: FTS5 on SQLite, a tsvector on PostgreSQL; migration 0024)."""

    __tablename__ = "harvested_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("harvested_studies.id", ondelete="CASCADE"), index=True)
    body: Mapped[str] = mapped_column(Text)
    images: Mapped[int] = mapped_column(Integer)


class HarvestedFacetRow(Base):
    """A facet value of a harvested group; ``direct`` as in ``SearchSignatureRow``."""

    __tablename__ = "harvested_facets"

    group_id: Mapped[int] = mapped_column(
        ForeignKey("harvested_groups.id", ondelete="CASCADE"), primary_key=True
    )
    facet: Mapped[str] = mapped_column(String(40), primary_key=True, index=True)
    value: Mapped[str] = mapped_column(String(255), primary_key=True, index=True)
    direct: Mapped[bool] = mapped_column(Boolean)


class AuditCheckpointRow(Base):
    """A signed tree head of this node's audit log: the Merkle root (RFC 9162) over its first ``size``
    entries, the C2SP signed note that publishes it, and the tree's perfect subtrees (so the next one
    hashes the new entries only)."""

    __tablename__ = "audit_checkpoints"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root: Mapped[str] = mapped_column(String(64))  # hex
    note: Mapped[str] = mapped_column(Text)
    subtrees: Mapped[list[Any]] = mapped_column(JSON)  # hex hashes, largest subtree first
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WitnessedCheckpointRow(Base):
    """A peer's audit checkpoint this node checked (signed by the peer's pinned key, consistent with the
    ones witnessed before) and countersigned. Kept as evidence even if the peer is removed."""

    __tablename__ = "witnessed_checkpoints"
    __table_args__ = (UniqueConstraint("origin", "size", name="uq_witnessed_origin_size"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    origin: Mapped[str] = mapped_column(String(255), index=True)  # the log's name: NODE/audit
    public_key: Mapped[str] = mapped_column(String(64))  # the key that signed it
    size: Mapped[int] = mapped_column(BigInteger)
    root: Mapped[str] = mapped_column(String(64))  # hex
    note: Mapped[str] = mapped_column(Text)  # the peer's signed note
    cosignature: Mapped[str] = mapped_column(Text)  # this node's signature line (C2SP tlog-cosignature)
    witnessed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AnalysisRunRow(Base):
    """A run of an allow-listed analysis on a dataset: who asked, with what, over how many images, and its
    outputs once checked; released to the requester at once, or after review where a study asks for it."""

    __tablename__ = "analysis_runs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    analysis: Mapped[str] = mapped_column(String(64))
    dataset_id: Mapped[str] = mapped_column(String(40), index=True)
    studies: Mapped[list[Any]] = mapped_column(JSON)  # the dataset's studies (who may review)
    requester: Mapped[str] = mapped_column(String(255), index=True)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    images: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))  # released, pending_review, failed
    outputs: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    released_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AnalysisApprovalRow(Base):
    """A plan approved before it runs: ``requester`` may run ``analysis`` on the dataset version, as its
    studies' owner, a data steward or an admin (``approved_by``) agreed (federated training over
    restricted studies, whose weights leave each round)."""

    __tablename__ = "analysis_approvals"
    __table_args__ = (
        UniqueConstraint("analysis", "dataset_id", "requester", name="uq_analysis_approvals_plan"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    analysis: Mapped[str] = mapped_column(String(64))
    dataset_id: Mapped[str] = mapped_column(String(40))
    requester: Mapped[str] = mapped_column(String(255))
    approved_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CorrelativeSetRow(Base):
    """Images of one sample from different modalities, registered into the space of one of them (the
    reference); a set is made once and never edited (a new registration is a new set)."""

    __tablename__ = "correlative_sets"
    __table_args__ = (UniqueConstraint("study_id", "name", name="uq_correlative_sets_study_name"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(Text, default="")
    reference_image_id: Mapped[str] = mapped_column(ForeignKey("images.id"))
    reference_modality: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    members: Mapped[list[CorrelativeMemberRow]] = relationship(
        order_by="CorrelativeMemberRow.position", cascade="all, delete-orphan"
    )


class CorrelativeMemberRow(Base):
    """A member of a correlative set: its affine into the reference's physical space (homogeneous, axes in
    the images' order), how it was made (a matrix, or least squares on ``landmarks`` with ``residual``,
    RMS in reference pixels) and how the overlay draws it."""

    __tablename__ = "correlative_members"

    set_id: Mapped[str] = mapped_column(ForeignKey("correlative_sets.id"), primary_key=True)
    image_id: Mapped[str] = mapped_column(ForeignKey("images.id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    modality: Mapped[str] = mapped_column(String(64))
    colour: Mapped[str] = mapped_column(String(6))
    matrix: Mapped[list[Any]] = mapped_column(JSON)
    method: Mapped[str] = mapped_column(String(16))
    landmarks: Mapped[list[Any]] = mapped_column(JSON)  # [{"image": [x, y], "reference": [x, y]}, ...]
    residual: Mapped[float | None] = mapped_column(Float, nullable=True)
