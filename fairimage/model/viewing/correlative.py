"""Correlative sets: images of one sample from different modalities (light and electron microscopy, or
channels acquired apart) registered into the space of one reference image.

Each member has an affine transform from its physical coordinates to the reference's, given as a matrix or
fitted by least squares to pairs of landmarks (the same feature's pixel position in the member and in the
reference), with the residual reported. Pure rules: fitting, the checks that refuse a transform that is
singular, fitted on too few or degenerate landmarks, fits badly or does not land on the reference, and the
resampling of a member's plane onto the reference's pixel grid.

Coordinates are in the images' axis order (z, y, x or y, x), as OME-NGFF coordinate transformations are; a
matrix is homogeneous, (d+1) x (d+1), its last row 0 ... 0 1, mapping [member physical; 1] to
[reference physical; 1] (OME-NGFF 0.6 "affine", input the member's space, output the reference's).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from fairimage.model.errors import InvalidInputError

NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,127}"
# A fitted transform whose landmarks lie further than this from where it puts them (root mean square, in
# reference pixels) is refused: the landmarks disagree, or an affine cannot register these images.
DEFAULT_MAX_RESIDUAL = 5.0
_CONDITION_LIMIT = 1e10  # a linear part this ill-conditioned squashes a direction to nothing: singular


class Landmark(BaseModel):
    """One feature's position, in level-0 pixels (x, y[, z]), in the member and in the reference."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    image: tuple[float, ...] = Field(min_length=2, max_length=3, description="x, y[, z] in the member")
    reference: tuple[float, ...] = Field(min_length=2, max_length=3, description="x, y[, z] in the reference")


class MemberSpec(BaseModel):
    """A member as asked for: its image, modality, display colour, and a matrix or landmarks."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    image: str
    modality: str = Field(min_length=1, max_length=64, description="e.g. EM, LM, FM, confocal")
    colour: str = Field(default="00FF00", pattern=r"^[0-9A-Fa-f]{6}$", description="RRGGBB in the overlay")
    matrix: tuple[tuple[float, ...], ...] | None = Field(
        default=None, description="(d+1) x (d+1) or d x (d+1), axes in the image's order (z, y, x), physical"
    )
    landmarks: tuple[Landmark, ...] | None = None
    max_residual: float = Field(default=DEFAULT_MAX_RESIDUAL, gt=0, description="in reference pixels")


class SetSpec(BaseModel):
    """A correlative set as asked for (the CLI's YAML file and the API's JSON body)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    reference: str = Field(description="the image whose space the others are registered into")
    reference_modality: str = Field(default="reference", min_length=1, max_length=64)
    members: tuple[MemberSpec, ...] = Field(min_length=1)


@dataclass(frozen=True)
class Space:
    """What registration needs of an image: its spatial axes (z, y, x or y, x), level-0 shape along them
    and pixel size (physical, in one unit shared by the set)."""

    image_id: str
    axes: str
    shape: tuple[int, ...]
    scale: tuple[float, ...]

    def corners(self) -> np.ndarray:
        """The physical corners of the image's extent (2^d of them), one per row."""
        edges = [(0.0, n * s) for n, s in zip(self.shape, self.scale, strict=True)]
        return np.array(np.meshgrid(*edges, indexing="ij")).reshape(len(edges), -1).T


@dataclass(frozen=True)
class Registration:
    """A member's transform into the reference's space, and how well it fits its landmarks."""

    matrix: tuple[tuple[float, ...], ...]  # homogeneous, axes in order
    method: str  # "matrix" or "landmarks"
    landmarks: int
    residual: float | None  # RMS distance, in reference pixels; None for a given matrix


def register(spec: MemberSpec, member: Space, reference: Space) -> Registration:
    """The member's transform into the reference's space, checked; InvalidInputError in one line naming
    the member when it is singular, fitted badly or on too few landmarks, or lands outside the reference."""
    where = f"member {spec.image}"
    if member.axes != reference.axes:
        raise InvalidInputError(
            f"{where}: its spatial axes are {member.axes!r} and the reference's {reference.axes!r}; register "
            "images of the same dimensionality (a plane of a volume can be ingested on its own)"
        )
    if (spec.matrix is None) == (spec.landmarks is None):
        raise InvalidInputError(
            f"{where}: give either a matrix or landmarks, not {'both' if spec.matrix else 'neither'}"
        )
    if spec.matrix is not None:
        registration = Registration(_homogeneous(spec.matrix, len(member.axes), where), "matrix", 0, None)
    else:
        assert spec.landmarks is not None
        registration = _fitted(spec, member, reference, where)
    _check_invertible(np.array(registration.matrix), where)
    _check_overlap(np.array(registration.matrix), member, reference, where)
    return registration


def _homogeneous(rows: tuple[tuple[float, ...], ...], d: int, where: str) -> tuple[tuple[float, ...], ...]:
    matrix = np.array(rows, dtype=float)
    if matrix.shape == (d, d + 1):
        matrix = np.vstack([matrix, [0.0] * d + [1.0]])
    if matrix.shape != (d + 1, d + 1):
        raise InvalidInputError(
            f"{where}: a {matrix.shape[0]} x {matrix.shape[1] if matrix.ndim == 2 else 0} matrix; "
            f"a {d}D affine is "
            f"{d + 1} x {d + 1} (or {d} x {d + 1}), axes in the image's order"
        )
    if not np.all(np.isfinite(matrix)) or not np.allclose(matrix[-1], [0.0] * d + [1.0]):
        raise InvalidInputError(
            f"{where}: the matrix's last row must be 0 ... 0 1 and every entry a finite number"
        )
    return tuple(tuple(float(v) for v in row) for row in matrix)


def _fitted(spec: MemberSpec, member: Space, reference: Space, where: str) -> Registration:
    assert spec.landmarks is not None
    d = len(member.axes)
    needed = d + 1
    if any(len(pair.image) != d or len(pair.reference) != d for pair in spec.landmarks):
        raise InvalidInputError(
            f"{where}: every landmark needs {d} coordinates (x, y{', z' if d == 3 else ''}) in both images"
        )
    if len(spec.landmarks) < needed:
        raise InvalidInputError(
            f"{where}: {len(spec.landmarks)} landmarks; a {d}D affine needs at least {needed}, "
            "not all on one "
            f"{'line' if d == 2 else 'plane'} (more make the fit and its residual meaningful)"
        )
    # Landmarks come as x, y[, z] pixels; the axes run z, y, x: reverse, then scale to physical.
    moving = np.array([pair.image[::-1] for pair in spec.landmarks]) * np.array(member.scale)
    fixed = np.array([pair.reference[::-1] for pair in spec.landmarks]) * np.array(reference.scale)
    design = np.hstack([moving, np.ones((len(moving), 1))])
    if np.linalg.matrix_rank(design) < needed:
        raise InvalidInputError(
            f"{where}: the member's landmarks all lie on one {'line' if d == 2 else 'plane'}; "
            "spread them over the image"
        )
    solution, *_ = np.linalg.lstsq(design, fixed, rcond=None)  # (d+1) x d: fixed = design @ solution
    matrix = np.vstack([solution.T, [0.0] * d + [1.0]])
    misfit = (design @ solution - fixed) / np.array(reference.scale)  # in reference pixels
    residual = float(math.sqrt(float(np.mean(np.sum(misfit**2, axis=1)))))
    if residual > spec.max_residual:
        raise InvalidInputError(
            f"{where}: the landmarks fit an affine with a residual of {residual:.2f} reference pixels "
            f"(RMS), over the {spec.max_residual:g} allowed; check the pairs (a swapped or mistyped point?) "
            "or raise max_residual"
        )
    return Registration(
        tuple(tuple(float(v) for v in row) for row in matrix), "landmarks", len(spec.landmarks), residual
    )


def _check_invertible(matrix: np.ndarray, where: str) -> None:
    linear = matrix[:-1, :-1]
    if not np.isfinite(np.linalg.cond(linear)) or np.linalg.cond(linear) > _CONDITION_LIMIT:
        raise InvalidInputError(
            f"{where}: the transform is singular (it flattens the image onto a line or a point); "
            "check the matrix"
        )


def _check_overlap(matrix: np.ndarray, member: Space, reference: Space, where: str) -> None:
    corners = member.corners()
    mapped = (matrix[:-1, :-1] @ corners.T).T + matrix[:-1, -1]
    low, high = mapped.min(axis=0), mapped.max(axis=0)
    extent = np.array(reference.shape) * np.array(reference.scale)
    if np.any(high <= 0) or np.any(low >= extent):
        raise InvalidInputError(
            f"{where}: the transform puts the image outside the reference (at {_box(low, high)}, "
            "the reference "
            f"spans {_box(np.zeros_like(extent), extent)}); check its translation and units"
        )


def _box(low: np.ndarray, high: np.ndarray) -> str:
    return " x ".join(f"{a:g}..{b:g}" for a, b in zip(low, high, strict=True))


# Reads a box of one of the member's planes: (plane, (row0, row1), (column0, column1)) -> pixels (y, x).
PlaneReader = Callable[[int, tuple[int, int], tuple[int, int]], np.ndarray]


def resample(
    read: PlaneReader,
    shape: tuple[int, ...],
    scale: tuple[float, ...],
    matrix: np.ndarray,
    out_shape: tuple[int, int],
    out_origin: tuple[float, float],
    out_pixel: tuple[float, float],
    z: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """A member (``shape`` pixels, (y, x) or (z, y, x), ``scale`` physical pixel size per axis) sampled
    on a grid of the reference's space: ``out_shape`` pixels from ``out_origin`` (y, x, physical),
    ``out_pixel`` apart, at reference depth ``z`` for 3D; linear in every axis (trilinear in 3D, so an
    oblique transform cuts the member's planes as it should), with a mask of where the member has pixels.
    ``matrix`` maps member to reference. Each plane the grid passes through is read once, and only the box
    of it the grid needs, so memory is that box, not the member."""
    d = matrix.shape[0] - 1
    rows = out_origin[0] + (np.arange(out_shape[0]) + 0.5) * out_pixel[0]
    columns = out_origin[1] + (np.arange(out_shape[1]) + 0.5) * out_pixel[1]
    grid_y, grid_x = np.meshgrid(rows, columns, indexing="ij")
    points = [grid_y.ravel(), grid_x.ravel()]
    if d == 3:
        points.insert(0, np.full(grid_y.size, z))
    inverse = np.linalg.inv(matrix)
    source = inverse[:-1, :-1] @ np.array(points) + inverse[:-1, -1:]
    coordinates = [source[axis] / scale[axis] - 0.5 for axis in range(d)]  # pixel centres at .0
    inside = np.ones(grid_y.size, dtype=bool)
    for value, n in zip(coordinates, shape, strict=True):
        inside &= (value >= -0.5) & (value <= n - 0.5)
    if d == 2:
        coordinates.insert(0, np.zeros(grid_y.size))
        shape = (1, *shape)
    sampled = np.zeros(grid_y.size)
    lows, highs, weights = [], [], []
    for value, n in zip(coordinates, shape, strict=True):
        value = np.clip(value, 0, n - 1)
        low = np.floor(value).astype(np.int64)
        lows.append(low)
        highs.append(np.minimum(low + 1, n - 1))
        weights.append(value - low)
    (z0, y0, x0), (z1, y1, x1), (fz, fy, fx) = lows, highs, weights
    at = np.flatnonzero(inside)
    for plane in np.unique(np.concatenate([z0[at], z1[at]])):
        lower_z, upper_z = at[z0[at] == plane], at[z1[at] == plane]
        both = np.union1d(lower_z, upper_z)
        top, left = int(y0[both].min()), int(x0[both].min())
        box = read(int(plane), (top, int(y1[both].max()) + 1), (left, int(x1[both].max()) + 1))
        values = box.astype(np.float64)
        for where, weight in ((lower_z, 1 - fz), (upper_z, fz)):
            a, b = y0[where] - top, y1[where] - top
            c, e = x0[where] - left, x1[where] - left
            wy, wx = fy[where], fx[where]
            upper = values[a, c] * (1 - wx) + values[a, e] * wx
            lower = values[b, c] * (1 - wx) + values[b, e] * wx
            sampled[where] += (upper * (1 - wy) + lower * wy) * weight[where]
    return sampled.reshape(out_shape), inside.reshape(out_shape)


@dataclass(frozen=True)
class CorrelativeMember:
    """A member as stored: its transform, how it was made, and its overlay colour."""

    image_id: str
    image_name: str
    modality: str
    colour: str
    matrix: tuple[tuple[float, ...], ...]  # member physical -> reference physical, homogeneous, axes in order
    method: str  # "matrix" or "landmarks"
    landmarks: int
    residual: float | None  # RMS, reference pixels


@dataclass(frozen=True)
class CorrelativeSet:
    """A stored set: its reference and members, in the reference's spatial unit."""

    id: str
    name: str
    description: str
    study_id: str
    study_name: str
    reference_image_id: str
    reference_name: str
    reference_modality: str
    axes: str  # the spatial axes the matrices act on: "yx" or "zyx"
    unit: str | None  # the reference's spatial unit, in which the matrices are
    created_by: str
    created_at: datetime
    members: tuple[CorrelativeMember, ...]

    def described(self) -> dict[str, Any]:
        """The set as the API and the CLI's --json show it: each member with its OME-NGFF affine."""
        described = asdict(self)
        described["created_at"] = self.created_at.isoformat()
        for member, shown in zip(self.members, described["members"], strict=True):
            shown["coordinateTransformations"] = self.coordinate_transformations(member)
        return described

    def coordinate_transformations(self, member: CorrelativeMember) -> list[dict[str, Any]]:
        """The member's transform as OME-NGFF 0.6 (RFC 5) writes it: an affine between named spaces."""
        return [
            {
                "type": "affine",
                "affine": [list(row) for row in member.matrix[:-1]],
                "input": member.image_id,
                "output": self.reference_image_id,
            }
        ]
