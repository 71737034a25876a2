"""Correlative sets of a study: made (registered, checked, stored with a new study version, audited), read
under the one access check, and drawn: the members overlaid on the reference in its space, or one member
resampled onto the reference's pixel grid for a region (for analysis, as a float TIFF, or rendered).

A set's images are all of its study, so the study's policy guards every byte a set shows.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import tifffile
from PIL import Image as PILImage
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fairimage.catalog import queries
from fairimage.catalog.tables import CorrelativeMemberRow, CorrelativeSetRow, ImageRow, StudyRow
from fairimage.model.errors import ConflictError, InvalidInputError, NotFoundError
from fairimage.model.governance.policy import Principal
from fairimage.model.study import Image, new_id
from fairimage.model.units import convert_length
from fairimage.model.viewing.correlative import (
    CorrelativeMember,
    CorrelativeSet,
    SetSpec,
    Space,
    register,
    resample,
)
from fairimage.model.viewing.render import (
    Plane,
    check_output_size,
    default_plane,
    fit_size,
    image_size,
    parse_region,
)
from fairimage.ngff.reader import read_region
from fairimage.services.governance import access, audit, versions
from fairimage.services.repository import Repository
from fairimage.services.viewing.tiles import Picture, Renderer, RenderRequest

OVERLAY_SIZES = range(16, 2049)


def create_set(repository: Repository, principal: Principal, study_key: str, spec: SetSpec) -> CorrelativeSet:
    """Register ``spec``'s members into its reference's space and store the set in its study (its owner, a
    data steward or an admin), with a new study version; one line naming the member and the problem
    otherwise, and nothing stored."""
    with repository.transaction() as session:
        study = access.governed_study(session, principal, study_key)
        reference = _study_image(session, study, spec.reference, "reference")
        chosen = [member.image for member in spec.members]
        if spec.reference in chosen or len(set(chosen)) != len(chosen):
            raise InvalidInputError(
                f"correlative set {spec.name!r}: each image is in a set once, and the reference is not "
                "a member"
            )
        reference_space = _space(reference, _unit(reference))
        set_id = new_id("cor")
        row = CorrelativeSetRow(
            id=set_id,
            study_id=study.id,
            name=spec.name,
            description=spec.description,
            reference_image_id=reference.id,
            reference_modality=spec.reference_modality,
            created_by=principal.name,
            created_at=datetime.now(UTC),
        )
        for position, member in enumerate(spec.members):
            image = _study_image(session, study, member.image, f"member {member.image}")
            registration = register(member, _space(image, _unit(reference)), reference_space)
            row.members.append(
                CorrelativeMemberRow(
                    image_id=image.id,
                    position=position,
                    modality=member.modality,
                    colour=member.colour.upper(),
                    matrix=[list(r) for r in registration.matrix],
                    method=registration.method,
                    landmarks=[pair.model_dump() for pair in member.landmarks or ()],
                    residual=registration.residual,
                )
            )
        if any(found.name == spec.name for found in queries.correlative_sets(session, study.id)):
            raise ConflictError(
                f"study {study.name!r} has a correlative set {spec.name!r} already; name it otherwise"
            )
        session.add(row)
        try:
            session.flush()
        except IntegrityError:
            raise ConflictError(f"study {study.name!r} has a correlative set {spec.name!r} already") from None
        versions.record_version(session, principal.name, study, f"correlative set {spec.name}")
        audit.record(session, principal.name, "correlative.create", f"study:{study.id}", set=set_id,
                     members=len(spec.members))  # fmt: skip
        found = queries.correlative_set(session, set_id)
        assert found is not None
        return found


def get_set(repository: Repository, principal: Principal, set_id: str) -> CorrelativeSet:
    """A correlative set whose study the caller may read; NotFoundError otherwise."""
    with repository.reading() as session:
        row = session.get(CorrelativeSetRow, set_id)
        study_id = row.study_id if row is not None else None
    if study_id is None:
        raise NotFoundError(f"correlative set {set_id!r} not found")
    try:
        access.check_study(repository, principal, study_id)
    except NotFoundError:
        raise NotFoundError(f"correlative set {set_id!r} not found") from None
    with repository.reading() as session:
        found = queries.correlative_set(session, set_id)
        assert found is not None
        return found


def list_sets(repository: Repository, principal: Principal, study_key: str) -> list[CorrelativeSet]:
    """The correlative sets of a study the caller may read, by name."""
    study_id = access.check_study(repository, principal, study_key)
    with repository.reading() as session:
        return queries.correlative_sets(session, study_id)


def overlay(
    renderer: Renderer,
    principal: Principal,
    set_id: str,
    size: int = 1024,
    z: int | None = None,
    opacity: dict[str, float] | None = None,
    if_none_match: str | None = None,
    region: str | None = None,
) -> Picture:
    """The reference (grey, its default window) with every member drawn over it in its colour, resampled
    into the reference's space, each at its ``opacity`` (0-1, default 0.5): ``region`` of the reference
    (x,y,w,h in its level-0 pixels; all of it by default) fitted into ``size``, so that a viewer zooms
    in on a detail of a large reference; of a volume, the reference's plane ``z`` (default the middle)."""
    found = get_set(renderer.repository, principal, set_id)
    reference, policy = renderer.image(principal, found.reference_image_id)
    if size not in OVERLAY_SIZES:
        raise InvalidInputError(f"size={size}: an overlay is 16 to 2048 pixels")
    box = parse_region(region, image_size(reference, "x"), image_size(reference, "y"))
    plane = default_plane(reference)
    depth = image_size(reference, "z")
    if z is not None and not 0 <= z < depth:
        raise InvalidInputError(f"z={z}: the reference has planes 0 to {depth - 1}")
    z = plane.z if z is None else z
    opacity = opacity or {}
    unknown = set(opacity) - {member.image_id for member in found.members}
    if unknown:
        raise InvalidInputError(f"opacity: {sorted(unknown)[0]} is not a member of this set")
    opacities = ",".join(f"{k}:{v:g}" for k, v in sorted(opacity.items()))
    key = f"{set_id}/overlay/{box.key()}/{size}/{z}/{opacities}"
    etag = '"' + hashlib.sha256(key.encode()).hexdigest()[:32] + '"'
    cache_control = access.cache_control(policy)
    if if_none_match is not None and etag in (tag.strip() for tag in if_none_match.split(",")):
        return Picture(b"", "image/png", etag, cache_control, not_modified=True)

    def draw() -> bytes:
        width, height = fit_size(box, size)
        grey = Plane(z=z, t=0, channels=tuple(replace(c, color="FFFFFF") for c in plane.channels[:1]))
        canvas = renderer.pixels(reference, RenderRequest(grey, box, width, height)).astype(np.float64)
        pixel = (reference.scale[-2] * box.height / height, reference.scale[-1] * box.width / width)
        origin = (box.y * reference.scale[-2], box.x * reference.scale[-1])
        for member in found.members:
            values, inside = _resampled(
                renderer, principal, found, member, reference, z, (height, width), origin, pixel
            )
            level = _windowed(renderer, principal, member, values)
            colour = np.array([int(member.colour[i : i + 2], 16) for i in (0, 2, 4)], np.float64)
            alpha = (opacity.get(member.image_id, 0.5) * inside)[..., None]
            canvas = canvas * (1 - alpha) + alpha * level[..., None] * colour
        return _png(np.clip(np.rint(canvas), 0, 255).astype(np.uint8))

    return Picture(renderer.kept(key, draw), "image/png", etag, cache_control)


def resampled(
    renderer: Renderer,
    principal: Principal,
    set_id: str,
    image_id: str,
    region: str | None = None,
    size: int | None = None,
    z: int | None = None,
    format: str = "tiff",
) -> Picture:
    """A member's pixels (first channel) on the reference's pixel grid: ``region`` in reference level-0
    pixels (default all of it), at full resolution or fitted into ``size``; bilinear, 0 where the member
    has no pixels. ``tiff``: the values as float32 (for measuring); ``png``: rendered with its window."""
    found = get_set(renderer.repository, principal, set_id)
    member = next((m for m in found.members if m.image_id == image_id), None)
    if member is None:
        raise NotFoundError(f"image {image_id!r} is not a member of correlative set {set_id!r}")
    if format not in ("tiff", "png"):
        raise InvalidInputError(f"format={format!r}: use tiff (float32 values) or png (rendered)")
    reference, policy = renderer.image(principal, found.reference_image_id)
    box = parse_region(region, image_size(reference, "x"), image_size(reference, "y"))
    width, height = fit_size(box, size) if size else (box.width, box.height)
    check_output_size(width, height)
    depth = image_size(reference, "z")
    z = depth // 2 if z is None else z
    if not 0 <= z < depth:
        raise InvalidInputError(f"z={z}: the reference has planes 0 to {depth - 1}")
    pixel = (reference.scale[-2] * box.height / height, reference.scale[-1] * box.width / width)
    origin = (box.y * reference.scale[-2], box.x * reference.scale[-1])
    values, inside = _resampled(
        renderer, principal, found, member, reference, z, (height, width), origin, pixel
    )
    etag = (
        '"'
        + hashlib.sha256(
            f"{set_id}/{image_id}/{box.key()}/{width}x{height}/{z}.{format}".encode()
        ).hexdigest()[:32]
        + '"'
    )
    if format == "tiff":
        buffer = io.BytesIO()
        tifffile.imwrite(buffer, np.where(inside, values, 0).astype(np.float32))
        return Picture(buffer.getvalue(), "image/tiff", etag, access.cache_control(policy))
    grey = _windowed(renderer, principal, member, values) * 255 * inside
    return Picture(_png(np.rint(grey).astype(np.uint8)), "image/png", etag, access.cache_control(policy))


def _resampled(
    renderer: Renderer,
    principal: Principal,
    found: CorrelativeSet,
    member: CorrelativeMember,
    reference: Image,
    z: int,
    shape: tuple[int, int],
    origin: tuple[float, float],
    pixel: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray]:
    """The member's first channel sampled on a grid of the reference's space (at the depth of its plane
    ``z`` for volumes), from the member's coarsest level still as fine as the grid."""
    image, _ = renderer.image(principal, member.image_id)
    matrix = np.array(member.matrix)
    factor = _unit_factor(image, found.unit)
    # The member's pixel size under the transform, against the grid's: the coarsest level at least as fine.
    stretch = float(np.sqrt(abs(np.linalg.det(matrix[-3:-1, -3:-1]))))  # of the y, x block
    wanted = min(pixel) / max(stretch, 1e-12)
    index = max((i for i, level in enumerate(image.levels) if level.scale[-1] * factor <= wanted), default=0)
    level = image.levels[index]
    array = renderer.level(image, index)
    axes = image.axis_names
    spatial = [axes.index(name) for name in found.axes]

    def read(plane: int, rows: tuple[int, int], columns: tuple[int, int]) -> np.ndarray:
        return read_region(array, axes, [0], plane, 0, rows, columns)[0]

    reference_z = 0.0
    if "z" in found.axes:
        reference_z = (z + 0.5) * reference.scale[reference.axis_names.index("z")]
    return resample(
        read,
        tuple(level.shape[i] for i in spatial),
        tuple(level.scale[i] * factor for i in spatial),
        matrix,
        shape,
        origin,
        pixel,
        reference_z,
    )


def _windowed(
    renderer: Renderer, principal: Principal, member: CorrelativeMember, values: np.ndarray
) -> np.ndarray:
    """A member's values scaled 0-1 by its first channel's display window, as the viewer shows them."""
    image, _ = renderer.image(principal, member.image_id)
    window = image.channels[0].window if image.channels else None
    low, high = (window.start, window.end) if window and window.end > window.start else (0.0, 1.0)
    return np.clip((values - low) / (high - low), 0, 1)


def _study_image(session: Session, study: StudyRow, image_id: str, role: str) -> ImageRow:
    image = session.get(ImageRow, image_id)
    if image is None or image.study_id != study.id:
        raise InvalidInputError(f"{role}: image {image_id!r} is not an image of study {study.name!r}")
    return image


def _spatial_axes(row: ImageRow) -> list[dict[str, Any]]:
    return [axis for axis in row.axes if axis["name"] in ("z", "y", "x")]


def _unit(row: ImageRow) -> str | None:
    return queries.spatial_unit(row)


def _space(row: ImageRow, unit: str | None) -> Space:
    """The image's spatial axes, shape and pixel size in ``unit`` (the reference's)."""
    names = [axis["name"] for axis in row.axes]
    spatial = "".join(axis["name"] for axis in _spatial_axes(row))
    factor = _convert(_unit(row), unit)
    return Space(
        image_id=row.id,
        axes=spatial,
        shape=tuple(int(row.shape[names.index(a)]) for a in spatial),
        scale=tuple(float(row.scale[names.index(a)]) * factor for a in spatial),
    )


def _unit_factor(image: Image, unit: str | None) -> float:
    return _convert(next((axis.unit for axis in image.axes if axis.name == "x"), None), unit)


def _convert(unit: str | None, into: str | None) -> float:
    """How many ``into`` one ``unit`` is (1 where either is unknown: the numbers are taken as they are)."""
    if unit is None or into is None or unit == into:
        return 1.0
    try:
        return convert_length(1.0, unit, into)
    except KeyError:
        return 1.0


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(pixels, "RGB" if pixels.ndim == 3 else "L").save(buffer, "PNG", compress_level=2)
    return buffer.getvalue()
