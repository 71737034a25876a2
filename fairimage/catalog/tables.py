"""Catalog tables. Image layout details (axes, levels, channels) are JSON: read whole, never queried."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Integer, String, Text, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class StudyRow(Base):
    __tablename__ = "studies"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    images: Mapped[list[ImageRow]] = relationship(back_populates="study")


class OriginalFileRow(Base):
    """A file (or OME-Zarr folder) as it was given to ingest, identified by its content."""

    __tablename__ = "original_files"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id"), index=True)
    name: Mapped[str] = mapped_column(String(1024))
    source_path: Mapped[str] = mapped_column(Text)
    format: Mapped[str] = mapped_column(String(40))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

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

    study: Mapped[StudyRow] = relationship(back_populates="images")
    original_file: Mapped[OriginalFileRow] = relationship(back_populates="images")
