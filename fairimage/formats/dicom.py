"""DICOM through pydicom: instances grouped into series by Study and Series Instance UID, slices ordered
along the slice normal by Image Position (Patient), one image per series with physical sizes in millimetres
from Pixel Spacing and the slices' spacing. Multi-frame instances (Enhanced CT/MR, cine) are one image: their
frames are slices where the frames have positions, else time points. Rescale Slope/Intercept are applied into
a dtype that holds every possible value (integers where the rescale is integral, else float32); MONOCHROME1
is kept as stored and marked to be shown inverted; colour (RGB, YBR) becomes three channels in RGB.

Compressed transfer syntaxes are decoded by pydicom's plugins (pylibjpeg: JPEG baseline, extended and
lossless, JPEG-LS, JPEG 2000, RLE). A series that cannot be stacked faithfully (different sizes or
orientations, two slices at one position, missing slices) is refused with what is wrong, never stacked.
"""

from __future__ import annotations

import itertools
import math
import struct
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fairimage.formats.base import ImageSource, OpenedFile, Region, check_declared
from fairimage.model.errors import CorruptFileError, UnsupportedError
from fairimage.model.image import Channel, ImageMetadata, make_axes, rgb_channels

if TYPE_CHECKING:  # pydicom is imported where a DICOM file is read: it costs every command 0.25 s otherwise
    from pydicom.dataset import Dataset

DICM_OFFSET = 128
WSI = "1.2.840.10008.5.1.4.1.1.77.1.6"  # VL Whole Slide Microscopy Image Storage
# Whole slide images that are not the tissue: a slide's label and overview photographs carry handwriting
# and barcodes (identifying text), a thumbnail is a copy.
_NOT_TISSUE = {"LABEL", "OVERVIEW", "THUMBNAIL"}
MM = "millimeter"
# Tolerances, in millimetres: positions closer than this are the same slice; a step this much larger than
# the usual spacing means slices are missing.
SAME_POSITION = 1e-3
GAP_FACTOR = 1.5


def is_dicom(head: bytes) -> bool:
    """A DICOM Part 10 file: 128 bytes of preamble, then 'DICM'."""
    return head[DICM_OFFSET : DICM_OFFSET + 4] == b"DICM"


@dataclass(frozen=True)
class Instance:
    """What one file's header says, enough to group and order it (its pixels are read later)."""

    path: Path
    study_uid: str
    series_uid: str
    rows: int
    columns: int
    samples: int
    frames: int
    position: tuple[float, float, float] | None
    orientation: tuple[float, ...] | None
    spacing: tuple[float, float] | None  # between rows (y) and between columns (x), mm
    slope: float
    intercept: float
    instance_number: int
    has_pixels: bool
    temporal: str = ""  # which time point of a 4D series: Temporal Position Identifier, else Trigger Time
    sop_class: str = ""
    image_type: tuple[str, ...] = ()
    matrix: tuple[int, int] | None = None  # a whole slide image's Total Pixel Matrix Rows, Columns

    @property
    def plane(self) -> tuple[float, ...]:
        """The orientation, rounded: slices in other orientations (a localizer's) are other images."""
        return tuple(round(v, 3) for v in self.orientation or ())


def read_header(path: Path) -> Instance:
    """One file's header; a file that is not DICOM or cannot be parsed is a one-line error naming it."""
    dataset = _read(path, pixels=False)
    with _damaged(path, "a header value cannot be read"):
        return _instance(path, dataset)


@cache
def _damaged_errors() -> tuple[type[BaseException], ...]:
    """What pydicom raises for a damaged file, while reading it or, lazily, when an element's value is first
    used: unknown VRs, lengths that are not a multiple of the value size, values that are not numbers."""
    from pydicom.errors import BytesLengthException

    return (
        OSError,
        ValueError,
        EOFError,
        KeyError,
        IndexError,
        TypeError,
        AttributeError,
        OverflowError,
        NotImplementedError,
        struct.error,
        BytesLengthException,
    )


@contextmanager
def _damaged(path: Path, what: str) -> Iterator[None]:
    try:
        yield
    except _damaged_errors() as exc:
        raise CorruptFileError(f"{path}: {what} ({_first_line(exc)}); the file is damaged") from None


def _read(path: Path, pixels: bool) -> Dataset:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(path, stop_before_pixels=not pixels)
    except InvalidDicomError as exc:
        raise CorruptFileError(f"{path}: not a DICOM file ({exc})") from None
    except _damaged_errors() as exc:
        raise CorruptFileError(f"{path}: the DICOM file cannot be read ({_first_line(exc)})") from None


def _instance(path: Path, dataset: Dataset) -> Instance:
    shared = _first(dataset, "SharedFunctionalGroupsSequence")
    measures = _first(shared, "PixelMeasuresSequence") or dataset
    transform = _first(shared, "PixelValueTransformationSequence") or dataset
    spacing = measures.get("PixelSpacing") or dataset.get("ImagerPixelSpacing")
    position = dataset.get("ImagePositionPatient")
    orientation = dataset.get("ImageOrientationPatient") or _first(
        shared, "PlaneOrientationSequence", "ImageOrientationPatient"
    )
    return Instance(
        path=path,
        study_uid=str(dataset.get("StudyInstanceUID", "")),
        series_uid=str(dataset.get("SeriesInstanceUID", "")),
        rows=int(dataset.get("Rows", 0) or 0),
        columns=int(dataset.get("Columns", 0) or 0),
        samples=int(dataset.get("SamplesPerPixel", 1) or 1),
        frames=int(dataset.get("NumberOfFrames", 1) or 1),
        position=tuple(float(v) for v in position) if position else None,  # type: ignore[arg-type]
        orientation=tuple(float(v) for v in orientation) if orientation else None,
        spacing=(float(spacing[0]), float(spacing[1])) if spacing else None,
        slope=float(transform.get("RescaleSlope", 1) or 1),
        intercept=float(transform.get("RescaleIntercept", 0) or 0),
        instance_number=int(dataset.get("InstanceNumber", 0) or 0),
        # read without its pixels, a header still tells whether it has an image: Rows and Columns are set
        has_pixels=bool(dataset.get("Rows")) and bool(dataset.get("Columns")),
        temporal=str(dataset.get("TemporalPositionIdentifier", "") or dataset.get("TriggerTime", "") or ""),
        sop_class=str(dataset.get("SOPClassUID", "")),
        image_type=tuple(str(v).upper() for v in (dataset.get("ImageType") or [])),
        matrix=(int(dataset.TotalPixelMatrixRows), int(dataset.TotalPixelMatrixColumns))
        if dataset.get("TotalPixelMatrixRows") and dataset.get("TotalPixelMatrixColumns")
        else None,
    )


def _first(dataset: Dataset | None, sequence: str, keyword: str | None = None) -> Any:
    if dataset is None:
        return None
    items = dataset.get(sequence)
    if not items:
        return None
    return items[0] if keyword is None else items[0].get(keyword)


@dataclass(frozen=True)
class Stack:
    """A series' instances in slice order, with the distance between slices (mm, None if unknown)."""

    instances: tuple[Instance, ...]  # time point by time point, each in slice order
    slice_spacing: float | None
    times: int = 1

    @property
    def depth(self) -> int:
        return len(self.instances) // self.times


def order_slices(series: Sequence[Instance]) -> Stack:
    """Single-frame instances ordered along the slice normal; refuses a series that is not one volume."""
    first = series[0]
    name = first.path.name
    sizes = {(i.rows, i.columns, i.samples) for i in series}
    if len(sizes) > 1:
        shown = ", ".join(f"{r}x{c}" + (f"x{s}" if s > 1 else "") for r, c, s in sorted(sizes))
        raise CorruptFileError(
            f"{name}: its series has slices of different sizes ({shown}); it is not one volume"
        )
    if len(series) == 1:
        return Stack(tuple(series), None)
    if any(i.frames > 1 for i in series):
        raise UnsupportedError(
            f"{name}: its series mixes multi-frame instances with others; ingest each multi-frame file alone"
        )
    if any(i.position is None or i.orientation is None for i in series):
        return Stack(tuple(sorted(series, key=lambda i: (i.instance_number, i.path.name))), None)
    orientations = {tuple(round(v, 4) for v in i.orientation or ()) for i in series}
    if len(orientations) > 1:
        raise CorruptFileError(f"{name}: its series has slices in {len(orientations)} orientations")
    normal = _normal(first.orientation or ())
    time_points = _time_points(series, normal)
    if time_points is not None:
        volumes = [order_slices(point) for point in time_points]
        in_order = tuple(instance for volume in volumes for instance in volume.instances)
        return Stack(in_order, volumes[0].slice_spacing, times=len(volumes))
    placed = sorted(series, key=lambda i: _distance(normal, i.position or (0, 0, 0)))
    distances = [_distance(normal, i.position or (0, 0, 0)) for i in placed]
    steps = [b - a for a, b in itertools.pairwise(distances)]
    for step, (before, after) in zip(steps, itertools.pairwise(placed), strict=True):
        if step < SAME_POSITION:
            raise CorruptFileError(
                f"{name}: two slices at the same position ({before.path.name} and {after.path.name}); "
                "the series holds duplicates or more than one volume"
            )
    usual = float(np.median(steps))
    for step, before in zip(steps, placed, strict=False):
        if step > GAP_FACTOR * usual:
            missing = round(step / usual) - 1
            raise CorruptFileError(
                f"{name}: about {missing} slice(s) missing after {before.path.name} "
                f"({step:.3g} mm to the next instead of {usual:.3g} mm); find the missing files"
            )
    return Stack(tuple(placed), usual)


def _time_points(series: Sequence[Instance], normal: np.ndarray) -> list[list[Instance]] | None:
    """A 4D series: the same slice positions at several time points (Temporal Position Identifier or Trigger
    Time), as one list of instances per time point in time order; None for one volume."""
    by_time: dict[str, list[Instance]] = {}
    for instance in series:
        by_time.setdefault(instance.temporal, []).append(instance)
    if len(by_time) < 2 or "" in by_time:
        return None
    positions = [
        sorted(round(_distance(normal, i.position or (0, 0, 0)), 2) for i in point)
        for point in by_time.values()
    ]
    if any(p != positions[0] for p in positions):
        return None  # not the same slices at every time point: checked (and refused) as one volume
    return [by_time[key] for key in sorted(by_time, key=_number)]


def _number(text: str) -> tuple[float, str]:
    try:
        return float(text), text
    except ValueError:
        return float("inf"), text


def _normal(orientation: Sequence[float]) -> np.ndarray:
    row, column = np.asarray(orientation[:3], float), np.asarray(orientation[3:6], float)
    return np.cross(row, column)


def _distance(normal: np.ndarray, position: Sequence[float]) -> float:
    return float(np.dot(normal, np.asarray(position, float)))


def output_dtype(
    raw: np.dtype[Any], slope: float, intercept: float, bits: int, signed: bool
) -> np.dtype[Any]:
    """The dtype that holds rescaled values: the stored one without a rescale; the smallest integer type
    for an integral rescale of the stored range; float32 otherwise."""
    if slope == 1 and intercept == 0:
        return raw
    if slope.is_integer() and intercept.is_integer():
        low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
        ends = [low * slope + intercept, high * slope + intercept]
        for candidate in (np.int16, np.int32):
            info = np.iinfo(candidate)
            if info.min <= min(ends) and max(ends) <= info.max:
                return np.dtype(candidate)
    return np.dtype(np.float32)


class _Source:
    """What the DICOM image sources share: their metadata, and a region by axis name."""

    _metadata: ImageMetadata

    @property
    def metadata(self) -> ImageMetadata:
        return self._metadata

    def _wanted(self, region: Region) -> dict[str, slice]:
        return dict(zip(self._metadata.axis_names, region, strict=True))


class DicomSeriesSource(_Source):
    """A series (or one multi-frame instance) as one image; pixels are decoded a slice range at a time."""

    def __init__(self, stack: Stack, header: Dataset, name: str) -> None:
        self.stack = stack
        first = stack.instances[0]
        frames = first.frames
        plane = (first.rows, first.columns)
        check_declared(str(first.path), plane, _raw_dtype(header).itemsize, piece=(*plane, first.samples))
        photometric = str(header.get("PhotometricInterpretation", "MONOCHROME2"))
        bits = int(header.get("BitsStored", header.get("BitsAllocated", 16)) or 16)
        signed = int(header.get("PixelRepresentation", 0) or 0) == 1
        raw = _raw_dtype(header)
        slopes = {(i.slope, i.intercept) for i in stack.instances}
        self._rescale = len(slopes) > 1 or slopes != {(1.0, 0.0)}
        slope, intercept = next(iter(slopes))
        self._dtype = (
            np.dtype(np.float32) if len(slopes) > 1 else output_dtype(raw, slope, intercept, bits, signed)
        )
        self._positions = _frame_positions(header) if frames > 1 else None
        if frames == 1:  # single-frame instances: time points (4D) of slices
            sizes = {"t": stack.times, "z": stack.depth}
        elif self._positions is not None:  # a multi-frame instance whose frames are slices
            sizes = {"t": 1, "z": frames}
        else:  # a multi-frame instance whose frames are time points (cine)
            sizes = {"t": frames, "z": 1}
        self._stacked = "".join(name for name in "tz" if sizes[name] > 1)
        colour = first.samples > 1
        # Planes are decoded as (t, z, c, y, x) without the axes of size 1; the image's axes are in OME-NGFF
        # order (c before z).
        self._natural = self._stacked + ("c" if colour else "") + "yx"
        axes = "".join(name for name in "tczyx" if name in self._natural)
        self._sizes = sizes
        row, column = first.spacing or (1.0, 1.0)
        scales = {"y": row, "x": column, "c": 1.0, "z": self._z_spacing(header), "t": _frame_time(header)}
        units: dict[str, str | None] = {"y": MM, "x": MM, "z": MM} if first.spacing is not None else {}
        if "t" in self._stacked:
            units["t"] = "millisecond" if header.get("FrameTime") else None
        shape = {"t": sizes["t"], "z": sizes["z"], "c": first.samples, "y": first.rows, "x": first.columns}
        channels = (
            rgb_channels(first.samples)
            if colour
            else (Channel(label=_label(header), inverted=photometric == "MONOCHROME1"),)
        )
        self._metadata = ImageMetadata(
            name=name,
            axes=make_axes(axes, units),
            shape=tuple(shape[a] for a in axes),
            dtype=self._dtype.name,
            scale=tuple(float(scales[a]) for a in axes),
            channels=channels,
            acquisition=acquisition(header),
            dicom=header_json(header),
        )

    def _z_spacing(self, header: Dataset) -> float:
        if self.stack.slice_spacing:
            return self.stack.slice_spacing
        if self._positions:
            steps = np.diff(sorted(self._positions))
            if len(steps) and float(np.median(steps)) > 0:
                return float(np.median(steps))
        shared = _first(header, "SharedFunctionalGroupsSequence")
        measures = _first(shared, "PixelMeasuresSequence") or header
        between = measures.get("SpacingBetweenSlices") or measures.get("SliceThickness")
        return float(between) if between else 1.0

    def read(self, region: Region) -> np.ndarray:
        axes = self._metadata.axis_names
        wanted = self._wanted(region)
        natural = [wanted[name] for name in self._natural]
        stacked = len(self._stacked)
        ranges = [range(*natural[k].indices(self._sizes[name])) for k, name in enumerate(self._stacked)]
        inner = tuple(natural[stacked:])
        if not ranges:
            block = self._plane(*self._index({}))[inner]
        else:
            planes = [
                self._plane(*(self._index(dict(zip(self._stacked, point, strict=True)))))[inner]
                for point in itertools.product(*ranges)
            ]
            block = np.stack(planes).reshape(*(len(r) for r in ranges), *planes[0].shape)
        order = [self._natural.index(name) for name in axes]
        return np.ascontiguousarray(block.transpose(order))

    def _index(self, point: dict[str, int]) -> tuple[int, int]:
        """(instance, frame) of a plane at time ``t`` and slice ``z``."""
        t, z = point.get("t", 0), point.get("z", 0)
        if self.stack.instances[0].frames > 1:
            return 0, self._frame_order()[z if self._positions is not None else t]
        return t * self._sizes["z"] + z, -1

    def _plane(self, instance_index: int, frame: int) -> np.ndarray:
        """One slice or frame: (c, y, x) for colour, else (y, x), rescaled."""
        instance = self.stack.instances[instance_index]
        pixels = _pixels(instance.path, frame if frame >= 0 else None)
        expected = (instance.rows, instance.columns) + ((instance.samples,) if instance.samples > 1 else ())
        if pixels.shape != expected:
            raise CorruptFileError(
                f"{instance.path}: its pixel data decodes to {pixels.shape}, the header says {expected}; "
                "the file is damaged"
            )
        if instance.samples > 1:
            pixels = np.moveaxis(pixels, -1, 0)
        if self._rescale:
            pixels = pixels.astype(np.float64) * instance.slope + instance.intercept
        return pixels.astype(self._dtype, copy=False)

    def _frame_order(self) -> list[int]:
        if self._positions is None:
            return list(range(self.stack.instances[0].frames))
        return sorted(range(len(self._positions)), key=lambda k: self._positions[k])  # type: ignore[index]


def _raw_dtype(header: Dataset) -> np.dtype[Any]:
    allocated = int(header.get("BitsAllocated", 16) or 16)
    signed = int(header.get("PixelRepresentation", 0) or 0) == 1
    if allocated == 8:
        return np.dtype(np.int8 if signed else np.uint8)
    if allocated == 32:
        return np.dtype(np.int32 if signed else np.uint32)
    return np.dtype(np.int16 if signed else np.uint16)


def _frame_positions(header: Dataset) -> list[float] | None:
    """Each frame's distance along the slice normal (Enhanced CT/MR per-frame plane positions)."""
    frames = header.get("PerFrameFunctionalGroupsSequence")
    orientation = _first(_first(header, "SharedFunctionalGroupsSequence"), "PlaneOrientationSequence")
    offsets = header.get("GridFrameOffsetVector")  # RT Dose: each frame's offset along the normal, mm
    if not frames and offsets and len(offsets) == int(header.get("NumberOfFrames", 1) or 1):
        return [float(offset) for offset in offsets]
    if not frames:
        return None
    positions = []
    for item in frames:
        plane = _first(item, "PlanePositionSequence")
        if plane is None or plane.get("ImagePositionPatient") is None:
            return None
        frame_orientation = orientation or _first(item, "PlaneOrientationSequence")
        if frame_orientation is None or frame_orientation.get("ImageOrientationPatient") is None:
            return None
        normal = _normal([float(v) for v in frame_orientation.ImageOrientationPatient])
        positions.append(_distance(normal, [float(v) for v in plane.ImagePositionPatient]))
    if len(set(round(p, 3) for p in positions)) != len(positions):
        return None  # frames share positions (a time series at each slice): kept in file order as time
    return positions


def _frame_time(header: Dataset) -> float:
    frame_time = header.get("FrameTime")
    return float(frame_time) if frame_time else 1.0


def _label(header: Dataset) -> str:
    return str(header.get("Modality") or "DICOM")


def _pixels(path: Path, frame: int | None) -> np.ndarray:
    """The pixels of one instance, or of one of its frames (only that frame is decoded); RGB for colour."""
    from pydicom.pixels import pixel_array

    dataset = _read(path, pixels=True)
    meta = getattr(dataset, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    with _damaged(path, "its pixel data cannot be read"):
        _check_frame(path, dataset, str(syntax or ""), frame)
    try:
        return np.asarray(pixel_array(dataset, index=frame))
    except (NotImplementedError, RuntimeError) as exc:
        with _damaged(path, "its pixel data cannot be read"):
            decoded = _decode_with_imagecodecs(dataset, str(syntax or ""), frame)
        if decoded is None:
            named = getattr(syntax, "name", None) or str(syntax or "unknown")
            raise UnsupportedError(
                f"{path}: its transfer syntax ({named}) cannot be decoded here ({_first_line(exc)})"
            ) from None
        return decoded
    except _damaged_errors() as exc:
        raise CorruptFileError(f"{path}: its pixel data cannot be read ({_first_line(exc)})") from None
    except BaseException as exc:
        if type(exc).__name__ != "PanicException":
            raise
        # pylibjpeg's Rust decoders (RLE) panic on some damaged frames; pyo3 raises that as a BaseException
        raise CorruptFileError(f"{path}: its pixel data cannot be decoded ({_first_line(exc)})") from None


RLE_LOSSLESS = "1.2.840.10008.1.2.5"
# RLE (PS3.5 G.3, PackBits) turns 2 bytes into at most 128: a frame is never more than 64 times its encoding.
_RLE_RATIO = 64
_NATIVE = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"}
# JPEG's start-of-frame markers (ISO 10918-1 B.1.1.3: C0-CF but DHT C4, JPG C8, DAC CC) and JPEG-LS's (F7)
_SOF = {*range(0xC0, 0xD0)} - {0xC4, 0xC8, 0xCC} | {0xF7}


def _check_frame(path: Path, dataset: Dataset, syntax: str, frame: int | None) -> None:
    """Before a compressed frame is decoded into a buffer of the header's Rows x Columns: the frame can be
    of that size. An RLE frame's bytes must hold it (pylibjpeg's decoder fills the whole frame before it
    finds them short); a JPEG, JPEG-LS or JPEG 2000 frame's own header must say the same size."""
    if syntax in _NATIVE or "PixelData" not in dataset:
        return  # pydicom compares native pixel data with the size it should have, before allocating
    rows, columns = int(dataset.Rows), int(dataset.Columns)
    encoded = len(dataset.PixelData or b"")
    if syntax == RLE_LOSSLESS:
        size = rows * columns * int(dataset.get("SamplesPerPixel", 1) or 1)
        size *= math.ceil(int(dataset.get("BitsAllocated", 8) or 8) / 8)
        if size > _RLE_RATIO * encoded:
            raise CorruptFileError(
                f"{path}: its RLE pixel data ({encoded} bytes) cannot hold a frame of {size} bytes; "
                "the file is truncated or damaged"
            )
        return
    from pydicom.encaps import get_frame

    count = int(dataset.get("NumberOfFrames", 1) or 1)
    declared = _codestream_size(get_frame(dataset.PixelData, frame or 0, number_of_frames=count))
    if declared is not None and declared != (rows, columns):
        raise CorruptFileError(
            f"{path}: its compressed frame is {declared[0]} x {declared[1]} pixels, the header says "
            f"{rows} x {columns} (Rows x Columns); the file is damaged"
        )


def _codestream_size(data: bytes) -> tuple[int, int] | None:
    """The (rows, columns) a JPEG, JPEG-LS or JPEG 2000 codestream declares; None if it says none."""
    if data[:4] == b"\xff\x4f\xff\x51" and len(data) >= 24:  # J2K: SOC, then SIZ (ISO 15444-1 A.5.1)
        width, height, left, top = struct.unpack(">IIII", data[8:24])
        return height - top, width - left
    offset = 2 if data[:2] == b"\xff\xd8" else len(data)  # JPEG: SOI, then segments up to the SOF
    while offset + 9 <= len(data) and data[offset] == 0xFF:
        if data[offset + 1] in _SOF:
            height, width = struct.unpack(">HH", data[offset + 5 : offset + 9])
            return (height, width) if height else None  # 0: the height comes later, in a DNL segment
        offset += 2 + struct.unpack(">H", data[offset + 2 : offset + 4])[0]
    return None


# Encapsulated syntaxes imagecodecs decodes where pydicom's plugins give up (12-bit JPEG Extended, say).
_IMAGECODECS = {
    "1.2.840.10008.1.2.4.50": "jpeg8_decode",
    "1.2.840.10008.1.2.4.51": "jpeg8_decode",
    "1.2.840.10008.1.2.4.57": "ljpeg_decode",
    "1.2.840.10008.1.2.4.70": "ljpeg_decode",
    "1.2.840.10008.1.2.4.80": "jpegls_decode",
    "1.2.840.10008.1.2.4.81": "jpegls_decode",
    "1.2.840.10008.1.2.4.90": "jpeg2k_decode",
    "1.2.840.10008.1.2.4.91": "jpeg2k_decode",
}


def _decode_with_imagecodecs(dataset: Dataset, syntax: str, frame: int | None) -> np.ndarray | None:
    """The frame (or every frame) decoded by imagecodecs, or None if it cannot either."""
    import imagecodecs
    from pydicom.encaps import generate_frames

    decoder = getattr(imagecodecs, _IMAGECODECS.get(syntax, ""), None)
    if decoder is None:
        return None
    count = int(dataset.get("NumberOfFrames", 1) or 1)
    encoded = list(generate_frames(dataset.PixelData, number_of_frames=count))
    try:
        frames = [np.asarray(decoder(data)) for data in (encoded if frame is None else [encoded[frame]])]
    except Exception:  # noqa: BLE001 - any decoder failure means this fallback cannot help either
        return None
    pixels = np.stack(frames) if len(frames) > 1 else frames[0]
    if int(dataset.get("PixelRepresentation", 0) or 0) == 1 and pixels.dtype.kind == "u":
        pixels = pixels.view(pixels.dtype.name.replace("uint", "int"))
    return pixels


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def acquisition(header: Dataset) -> dict[str, str]:
    """What the (de-identified) header says of the acquisition, as search and REMBI use it."""
    fields = {
        "modality": "Modality",
        "body_part": "BodyPartExamined",
        "manufacturer": "Manufacturer",
        "instrument": "ManufacturerModelName",
        "series_description": "SeriesDescription",
        "study_description": "StudyDescription",
        "protocol": "ProtocolName",
        "sop_class": "SOPClassUID",
    }
    found = {}
    for name, keyword in fields.items():
        value = header.get(keyword)
        if value not in (None, "", "ANONYMIZED"):  # not the dummy value de-identification left
            found[name] = (
                str(getattr(value, "name", None) or value) if keyword == "SOPClassUID" else str(value)
            )
    return found


def header_json(header: Dataset) -> dict[str, Any]:
    """The header as the DICOM JSON model (PS3.18 F.2), without pixel data."""
    from pydicom.dataset import Dataset

    copy = Dataset(header)
    for keyword in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"):
        if keyword in copy:
            del copy[keyword]
    return copy.to_json_dict(bulk_data_threshold=4096, bulk_data_element_handler=lambda _: "")


class DicomReader:
    """One DICOM file on its own; ingest groups files of one series before reading them (``open_series``)."""

    name = "dicom"

    def sniff(self, head: bytes) -> bool:
        return is_dicom(head)

    @contextmanager
    def open(self, path: Path) -> Iterator[OpenedFile]:
        with open_series([read_header(path)]) as opened:
            yield opened


@contextmanager
def open_series(instances: Sequence[Instance], prepare: Any = None) -> Iterator[OpenedFile]:
    """The image of one series, from its files' headers (``read_header``, in any order). ``prepare`` may
    change the header the image's metadata is made from (de-identification) before anything is read."""
    with_pixels = [instance for instance in instances if instance.has_pixels]
    if not with_pixels:
        raise UnsupportedError(f"{instances[0].path}: a DICOM file without an image (no Pixel Data)")
    if any(instance.sop_class == WSI for instance in with_pixels):
        base = whole_slide_base(with_pixels)
        header = _read(base.path, pixels=False)
        if prepare is not None:
            prepare(header)
        with _damaged(base.path, "a header value cannot be read"):
            name = str(header.get("SeriesDescription") or "") or base.path.name
            source: ImageSource = DicomSlideSource(base, header, name)
        yield OpenedFile(format="dicom", images=[source])
        return
    stack = order_slices(with_pixels)
    header = _read(stack.instances[0].path, pixels=False)
    if prepare is not None:
        prepare(header)
    with _damaged(stack.instances[0].path, "a header value cannot be read"):
        name = str(header.get("SeriesDescription") or "") or stack.instances[0].path.name
        source = DicomSeriesSource(stack, header, name)
    yield OpenedFile(format="dicom", images=[source])


def whole_slide_base(instances: Sequence[Instance]) -> Instance:
    """The full-resolution tissue image of a whole slide series: the largest VOLUME level (fairimage makes
    its own pyramid from it; the series' label and overview photographs are left out)."""
    tissue = [i for i in instances if i.sop_class == WSI and i.matrix and not _NOT_TISSUE & set(i.image_type)]
    if not tissue:
        raise UnsupportedError(f"{instances[0].path}: a whole slide series without a tissue image")
    return max(tissue, key=lambda i: (i.matrix or (0, 0))[0] * (i.matrix or (0, 0))[1])


class DicomSlideSource(_Source):
    """A whole slide image (VL WSI, TILED_FULL): the total pixel matrix, read tile by tile (frames)."""

    def __init__(self, base: Instance, header: Dataset, name: str) -> None:
        self.base = base
        organisation = str(header.get("DimensionOrganizationType", "TILED_FULL") or "TILED_FULL")
        if organisation != "TILED_FULL" or int(header.get("TotalPixelMatrixFocalPlanes", 1) or 1) > 1:
            raise UnsupportedError(
                f"{base.path}: a whole slide image organised as {organisation} or with several focal "
                "planes; fairimage reads TILED_FULL single-plane slides"
            )
        rows, columns = base.matrix or (base.rows, base.columns)
        tile = (base.rows, base.columns, base.samples)
        check_declared(str(base.path), (*tile, rows, columns), _raw_dtype(header).itemsize, piece=tile)
        self._tiles_across = math.ceil(columns / base.columns)
        self._dtype = _raw_dtype(header) if base.samples == 1 else np.dtype(np.uint8)
        colour = base.samples > 1
        axes = "cyx" if colour else "yx"
        shared = _first(header, "SharedFunctionalGroupsSequence")
        spacing = (_first(shared, "PixelMeasuresSequence") or header).get("PixelSpacing")
        y_mm, x_mm = (float(spacing[0]), float(spacing[1])) if spacing else (1.0, 1.0)
        shape = {"c": base.samples, "y": rows, "x": columns}
        scale = {"c": 1.0, "y": y_mm, "x": x_mm}
        self._metadata = ImageMetadata(
            name=name,
            axes=make_axes(axes, {"y": MM, "x": MM} if spacing else {}),
            shape=tuple(shape[a] for a in axes),
            dtype=self._dtype.name,
            scale=tuple(scale[a] for a in axes),
            channels=rgb_channels(base.samples) if colour else (Channel(label="DICOM"),),
            acquisition=acquisition(header),
            dicom=header_json(header),
        )

    def read(self, region: Region) -> np.ndarray:
        wanted = self._wanted(region)
        rows, columns = self._metadata.shape[-2:]
        y0, y1, _ = wanted["y"].indices(rows)
        x0, x1, _ = wanted["x"].indices(columns)
        tile_rows, tile_columns = self.base.rows, self.base.columns
        samples = self.base.samples
        out = np.zeros((y1 - y0, x1 - x0, samples), dtype=self._dtype)
        for tile_y in range(y0 // tile_rows, (y1 - 1) // tile_rows + 1):
            for tile_x in range(x0 // tile_columns, (x1 - 1) // tile_columns + 1):
                tile = self._tile(tile_y * self._tiles_across + tile_x).reshape(
                    tile_rows, tile_columns, samples
                )
                top, left = tile_y * tile_rows, tile_x * tile_columns
                ys, xs = max(y0, top), max(x0, left)
                ye, xe = min(y1, top + tile_rows), min(x1, left + tile_columns)
                out[ys - y0 : ye - y0, xs - x0 : xe - x0] = tile[ys - top : ye - top, xs - left : xe - left]
        block = np.moveaxis(out, -1, 0) if samples > 1 else out[..., 0]
        if samples > 1:
            block = block[wanted["c"]]
        return np.ascontiguousarray(block)

    def _tile(self, frame: int) -> np.ndarray:
        pixels = _pixels(self.base.path, frame)
        if pixels.size != self.base.rows * self.base.columns * self.base.samples:
            raise CorruptFileError(
                f"{self.base.path}: frame {frame} decodes to {pixels.shape}, not a tile of "
                f"{self.base.rows} x {self.base.columns}; the file is damaged"
            )
        return pixels
