"""TIFF, BigTIFF, ImageJ hyperstacks and OME-TIFF through tifffile, read lazily region by region."""

from __future__ import annotations

import itertools
import logging
import math
import re
import struct
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
import zarr

from fairimage.formats.base import ImageSource, OpenedFile, Region, check_declared, plan_axes
from fairimage.model.errors import CorruptFileError
from fairimage.model.image import Channel, ImageMetadata, default_channels, make_axes, rgb_channels
from fairimage.model.units import Length, space_unit, time_unit

# tifffile logs its own warnings about damaged files; this reader's one-line error already says it (and a
# dask worker would print them on the user's terminal).
logging.getLogger("tifffile").setLevel(logging.ERROR)

# tifffile's axis letters (tifffile.TIFF.AXES) onto tczyx. S (samples, e.g. RGB) are channels; I and Q
# (a plain page sequence, unknown) and the rarer stack kinds become z, as microscopists expect of a stack.
_AXIS_MAP = {
    "T": "t",
    "C": "c",
    "S": "c",
    "Z": "z",
    "Y": "y",
    "X": "x",
    "I": "z",
    "Q": "z",
    "E": "c",
    "L": "z",
    "V": "z",
    "A": "z",
    "P": "z",
    "R": "z",
    "H": "z",
    "M": "z",
}
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_OME_NS = "{http://www.openmicroscopy.org/Schemas/OME/2016-06}"
_EXTENSION = re.compile(r"\.ome\.tiff?$", re.IGNORECASE)  # OME-TIFF's name, which every file of a set has


class TiffReader:
    name = "tiff"

    def sniff(self, head: bytes) -> bool:
        return head[:4] in _TIFF_MAGIC

    @contextmanager
    def open(self, path: Path) -> Iterator[OpenedFile]:
        with _damaged(path, "not a readable TIFF"):
            tif = tifffile.TiffFile(path)
        try:
            with _damaged(path, "not a readable TIFF"):
                kind = "ome-tiff" if tif.is_ome else "imagej-tiff" if tif.is_imagej else "tiff"
                images: list[ImageSource] = list(_series_sources(path, tif))
            yield OpenedFile(format=kind, images=images)
        finally:
            tif.close()


# What tifffile and the imagecodecs decoders under it raise for a damaged file: its own error, the codecs'
# RuntimeErrors, and the built-in errors its reading of offsets, counts and tag values runs into.
_DAMAGED = (
    tifffile.TiffFileError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    ZeroDivisionError,
    OverflowError,
    struct.error,
    OSError,
    EOFError,
    RuntimeError,
    AttributeError,
    ET.ParseError,
    AssertionError,  # tifffile asserts what it expects of a file's structure
)


@contextmanager
def _damaged(path: Path, what: str) -> Iterator[None]:
    """Translate tifffile's errors for a damaged file into one CorruptFileError naming it."""
    try:
        yield
    except _DAMAGED as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CorruptFileError(
            f"{path}: {what} ({reason}); the file may be truncated or damaged, copy it again"
        ) from exc


def _series_sources(path: Path, tif: tifffile.TiffFile) -> Iterator[TiffSeriesSource]:
    _check_page_chain(path, tif)
    root = _ome_root(tif.ome_metadata) if tif.is_ome else None
    ome = _parse_ome(root)
    # Before tifffile opens a multi-file OME-TIFF's other files: it would read a missing file's planes as 0.
    check_companions(path, _companions(path, root))
    if not tif.series:
        raise CorruptFileError(f"{path}: the TIFF holds no image data")
    for index, series in enumerate(tif.series):
        described = ome[index] if index < len(ome) else None
        yield TiffSeriesSource(path, tif, index, series, described)


def multifile_companions(path: Path) -> tuple[Path, ...]:
    """The other files of the multi-file OME-TIFF ``path`` belongs to (see ``ome_companions``); () for any
    other file, or one that is not a readable TIFF (its reader says why later)."""
    if not _EXTENSION.search(path.name):
        return ()
    try:
        with tifffile.TiffFile(path) as tif:
            xml = tif.ome_metadata if tif.is_ome else None
    except _DAMAGED:
        return ()
    return ome_companions(path, xml)


def ome_companions(path: Path, xml: str | None) -> tuple[Path, ...]:
    """The other files of a multi-file OME-TIFF (one file per plane or per z-range, its OME-XML naming
    every file by TiffData UUID FileName), in name order; () for a file that holds all its pixels.

    Each must be named as a file beside ``path``: a name with a folder in it ('../x', '/etc/x', which a
    reader would open) is a CorruptFileError naming them. Whether they are there is ``check_companions``."""
    return _companions(path, _ome_root(xml) if xml and "FileName" in xml else None)


def _companions(path: Path, root: ET.Element | None) -> tuple[Path, ...]:
    if root is None:
        return ()
    names = sorted(
        {
            name
            for element in root.iter()
            if element.tag.endswith("UUID")
            and (name := element.get("FileName"))
            and name.lower() != path.name.lower()
        }
    )
    elsewhere = [name for name in names if name in (".", "..") or Path(name).name != name or "\\" in name]
    if elsewhere:
        raise CorruptFileError(
            f"{path}: its OME-XML names files outside its folder ({', '.join(elsewhere[:3])}); a multi-file "
            "OME-TIFF names its files by name alone, beside each other: fix the OME-XML"
        )
    return tuple(path.parent / name for name in names)


def check_companions(path: Path, companions: tuple[Path, ...]) -> None:
    """A CorruptFileError naming the files of ``path``'s multi-file OME-TIFF that are not beside it."""
    missing = [companion.name for companion in companions if not companion.is_file()]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise CorruptFileError(
            f"{path}: a multi-file OME-TIFF of {len(companions) + 1} files, {len(missing)} missing beside "
            f"it ({shown}); copy them into {path.parent.name or path.parent}/"
        )


def _check_page_chain(path: Path, tif: tifffile.TiffFile) -> None:
    """tifffile follows the chain of IFDs (one per page) without noticing a loop: an IFD that points back
    to one before it makes endless pages. Walk the chain first, and refuse a loop."""
    for _ in _ifd_chain(path, tif):
        pass


def _ifd_chain(path: Path, tif: tifffile.TiffFile) -> Iterator[tuple[int, int]]:
    """Each IFD's offset and tag count, in the chain's order, stopping where tifffile stops (a short read, an
    offset past the end, an implausible tag count); raises CorruptFileError on a loop."""
    fmt, fh = tif.tiff, tif.filehandle
    seen: set[int] = set()
    fh.seek(4 if fmt.version == 42 else 8)  # the first IFD's offset follows the header (TIFF 6.0, BigTIFF)
    offset = _unpack(fmt.offsetformat, fh.read(fmt.offsetsize))
    while offset and offset < fh.size:
        if offset in seen:
            raise CorruptFileError(
                f"{path}: its pages form a loop (the IFD at byte {offset} comes twice); the file is damaged"
            )
        seen.add(offset)
        fh.seek(offset)
        count = _unpack(fmt.tagnoformat, fh.read(fmt.tagnosize))
        if count > 4096:
            return
        yield offset, count
        fh.seek(offset + fmt.tagnosize + count * fmt.tagsize)
        offset = _unpack(fmt.offsetformat, fh.read(fmt.offsetsize))


def end_ifd_tags(path: Path) -> set[int]:
    """The tag codes of a TIFF's first and last IFD, read from their entries without decoding any page:
    where C2PA keeps its manifest store (tag 52545). Empty for a file tifffile cannot open."""
    try:
        with tifffile.TiffFile(path) as tif:
            chain = list(_ifd_chain(path, tif))
            if not chain:
                return set()
            fmt, fh, codes = tif.tiff, tif.filehandle, set()
            for offset, count in {chain[0], chain[-1]}:
                fh.seek(offset + fmt.tagnosize)
                entries = fh.read(count * fmt.tagsize)
                for start in range(0, len(entries) - 1, fmt.tagsize):  # each entry starts with its tag
                    codes.add(struct.unpack_from(tif.byteorder + "H", entries, start)[0])
            return codes
    except (CorruptFileError, *_DAMAGED):
        return set()


def _unpack(fmt: str, data: bytes) -> int:
    """One integer, or 0 (the end of the chain) where the file ends before it."""
    return int(struct.unpack(fmt, data)[0]) if len(data) == struct.calcsize(fmt) else 0


@dataclass
class _OmeImage:
    name: str
    sizes: dict[str, float]
    units: dict[str, str | None]
    channels: list[tuple[str | None, str | None]]  # (name, RRGGBB colour)
    acquisition: dict[str, str] = field(default_factory=dict)


def _ome_root(xml: str | None) -> ET.Element | None:
    """The OME-XML's root element; None where there is none, or it does not parse (the file is then read
    as a plain TIFF)."""
    if not xml:
        return None
    try:
        return ET.fromstring(xml)
    except ET.ParseError:
        return None


def _parse_ome(root: ET.Element | None) -> list[_OmeImage]:
    """Physical sizes, units and channel names/colours of each OME Image (OME-XML 2016-06)."""
    if root is None:
        return []
    ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else _OME_NS
    images = []
    for image in root.findall(f"{ns}Image"):
        pixels = image.find(f"{ns}Pixels")
        if pixels is None:
            continue
        sizes: dict[str, float] = {}
        units: dict[str, str | None] = {}
        for axis in "xyz":
            value = pixels.get(f"PhysicalSize{axis.upper()}")
            if value is not None:
                sizes[axis] = float(value)
                # OME-XML's default length unit is the micrometre.
                units[axis] = space_unit(pixels.get(f"PhysicalSize{axis.upper()}Unit", "µm"))
        if pixels.get("TimeIncrement") is not None:
            sizes["t"] = float(pixels.get("TimeIncrement", 1))
            units["t"] = time_unit(pixels.get("TimeIncrementUnit", "s"))
        channels = [(c.get("Name"), _ome_colour(c.get("Color"))) for c in pixels.findall(f"{ns}Channel")]
        acquisition = _ome_acquisition(root, image, pixels, ns)
        images.append(_OmeImage(image.get("Name") or "", sizes, units, channels, acquisition))
    return images


def _ome_acquisition(root: ET.Element, image: ET.Element, pixels: ET.Element, ns: str) -> dict[str, str]:
    """When and with what an OME Image was acquired: AcquisitionDate, the Instrument's microscope,
    the objective (by ObjectiveSettings, else the instrument's only one), detectors, and each channel's
    excitation and emission wavelengths."""
    found: dict[str, str] = {}
    date = image.findtext(f"{ns}AcquisitionDate")
    if date:
        found["acquired_at"] = date.strip()
    ref = image.find(f"{ns}InstrumentRef")
    instruments = root.findall(f"{ns}Instrument")
    instrument = next((i for i in instruments if ref is not None and i.get("ID") == ref.get("ID")), None)
    instrument = instrument if instrument is not None else (instruments[0] if len(instruments) == 1 else None)
    if instrument is not None:
        microscope = instrument.find(f"{ns}Microscope")
        if microscope is not None:
            found["instrument"] = _join(
                microscope.get("Manufacturer"), microscope.get("Model"), microscope.get("Type")
            )
        settings = image.find(f"{ns}ObjectiveSettings")
        objectives = instrument.findall(f"{ns}Objective")
        objective = next(
            (o for o in objectives if settings is not None and o.get("ID") == settings.get("ID")), None
        )
        objective = objective if objective is not None else (objectives[0] if len(objectives) == 1 else None)
        if objective is not None:
            magnification = objective.get("NominalMagnification")
            aperture = objective.get("LensNA")
            found["objective"] = _join(
                objective.get("Manufacturer"),
                objective.get("Model"),
                f"{float(magnification):g}x" if magnification else None,
                f"NA {aperture}" if aperture else None,
                objective.get("Immersion"),
            )
        detectors = [
            _join(d.get("Manufacturer"), d.get("Model"), d.get("Type"))
            for d in instrument.findall(f"{ns}Detector")
        ]
        if any(detectors):
            found["detector"] = "; ".join(d for d in detectors if d)
    wavelengths = []
    for index, channel in enumerate(pixels.findall(f"{ns}Channel")):
        parts = [
            f"{label} {channel.get(attr)} {channel.get(attr + 'Unit', 'nm')}"
            for label, attr in (("excitation", "ExcitationWavelength"), ("emission", "EmissionWavelength"))
            if channel.get(attr)
        ]
        if parts:
            wavelengths.append(f"{channel.get('Name') or f'channel {index}'}: {', '.join(parts)}")
    if wavelengths:
        found["wavelengths"] = "; ".join(wavelengths)
    return {key: value for key, value in found.items() if value}


def _join(*parts: str | None) -> str:
    return " ".join(part for part in parts if part)


def _tiff_acquisition(tif: tifffile.TiffFile) -> dict[str, str]:
    """What plain TIFF tags say: DateTime (306), Make and Model (271, 272), Software (305)."""
    tags = tif.pages.first.tags
    found: dict[str, str] = {}
    value = tags.valueof(306)
    if value:
        found["acquired_at"] = str(value).strip()
    instrument = _join(*(str(tags.valueof(code) or "").strip() or None for code in (271, 272)))
    if instrument:
        found["instrument"] = instrument
    software = tags.valueof(305)
    if software:
        found["software"] = str(software).strip()
    return found


def _ome_colour(value: str | None) -> str | None:
    """OME colours are signed 32-bit RGBA integers; NGFF wants RRGGBB."""
    if value is None:
        return None
    try:
        rgba = int(value) & 0xFFFFFFFF
    except ValueError:
        return None
    return f"{rgba >> 8:06X}"


class TiffSeriesSource:
    """One tifffile series (an OME image, an ImageJ hyperstack or a page stack), level 0 only:
    fairimage builds its own pyramid."""

    def __init__(
        self, path: Path, tif: tifffile.TiffFile, index: int, series: Any, ome: _OmeImage | None
    ) -> None:
        self.path = path
        self._tif = tif
        self._series = series
        axes, self._plan = plan_axes(series.axes, series.shape, _AXIS_MAP, str(path))
        dtype = np.dtype(series.dtype)
        _check_sizes(path, tif, series, dtype, _count(axes, self._plan.shape))
        self._array: Any = None
        name = (
            path.name if len(tif.series) == 1 else f"{path.name} [{ome.name if ome and ome.name else index}]"
        )
        sizes, units = _physical_sizes(tif, series, ome)
        z_unit = units.get("z")
        self._z_spacing = Length(sizes["z"], z_unit) if z_unit and sizes.get("z", 0) > 0 else None
        shape = self._plan.shape
        self._metadata = ImageMetadata(
            name=name,
            axes=make_axes(axes, units),
            shape=shape,
            dtype=dtype.name,
            scale=tuple(sizes.get(a, 1.0) if a != "c" else 1.0 for a in axes),
            channels=_channels(axes, shape, series, ome),
            acquisition={**_tiff_acquisition(tif), **(ome.acquisition if ome else {})},
        )

    @property
    def metadata(self) -> ImageMetadata:
        return self._metadata

    @property
    def recorded_z_spacing(self) -> Length | None:
        """The distance between planes the file records (ImageJ's spacing, OME's PhysicalSizeZ), with a
        length unit; also for a file of one plane, whose metadata has no z axis to carry it (a section)."""
        return self._z_spacing

    def read(self, region: Region) -> np.ndarray:
        with _damaged(self.path, "pixel data unreadable"):
            if self._array is None:
                self._array = _pixels(self.path, self._tif, self._series)
            return self._plan.read(self._array, region)


def _check_sizes(path: Path, tif: tifffile.TiffFile, series: Any, dtype: np.dtype, channels: int) -> None:
    """Before any pixel is read: the declared sizes are ones fairimage can read, and uncompressed pixels
    lie inside the file (reads are by region, so the largest piece is a compressed strip or tile)."""
    if series.dataoffset is not None and not series.is_pyramidal:
        check_declared(str(path), series.shape, dtype.itemsize, piece=(), channels=channels)
        end = series.dataoffset + math.prod(series.shape) * dtype.itemsize
        size = tif.filehandle.size
        if end > size:
            raise CorruptFileError(
                f"{path}: truncated: its pixels end at byte {end}, the file has {size} bytes; "
                "the file is incomplete, copy it again"
            )
        return
    page = series.keyframe
    check_declared(str(path), series.shape, dtype.itemsize, piece=page.chunks, channels=channels)
    piece = math.prod(page.chunks) * dtype.itemsize
    ratio = _MOST_PER_BYTE.get(int(page.compression))
    if ratio and page.databytecounts and max(page.databytecounts) * ratio + (1 << 20) < piece:
        raise CorruptFileError(
            f"{path}: truncated: its {page.compression.name} strips or tiles of {max(page.databytecounts)} "
            f"bytes at most cannot hold {piece} bytes each; the file is damaged, copy it again"
        )


# The most decoded bytes one byte of a strip or tile can give, for the codecs where it is bounded: deflate
# 1032 (RFC 1951), LZW about 2730 (12-bit codes of at most 4096 bytes), PackBits 64, Huffman JPEG about
# 2048 (a bit for each 8x8 block). Other codecs (zstd, LERC, JPEG 2000) have no useful bound.
_MOST_PER_BYTE = {5: 4096, 7: 2048, 8: 1032, 32946: 1032, 32773: 64}


def _pixels(path: Path, tif: tifffile.TiffFile, series: Any) -> Any:
    """Level 0 as something numpy-indexable that reads only what an index touches."""
    if series.dataoffset is not None and not series.is_pyramidal:
        # Uncompressed and contiguous in the file (ImageJ and many microscopes write one strip per plane):
        # read rows straight from the file instead of decoding whole strips.
        dtype = np.dtype(series.dtype).newbyteorder(tif.byteorder)
        return ContiguousPixels(path, series.dataoffset, tuple(series.shape), dtype, series.axes.find("Y"))
    # Otherwise tifffile's zarr store decodes only the strips or tiles a region touches.
    return zarr.open_array(series.aszarr(level=0), mode="r")


class ContiguousPixels:
    """An uncompressed C-ordered array at ``offset`` in a file, indexed with ints and unit-step slices.

    Each read fetches whole rows of the plane (the ``row_axis`` and every axis after it), so memory is the
    size of the region asked for, never of the file.
    """

    def __init__(
        self, path: Path, offset: int, shape: tuple[int, ...], dtype: np.dtype, row_axis: int
    ) -> None:
        self.path, self.offset, self.shape, self.dtype, self.row_axis = path, offset, shape, dtype, row_axis
        self.row_shape = shape[row_axis + 1 :]
        self.row_bytes = int(np.prod(self.row_shape, dtype=np.int64)) * dtype.itemsize

    def __getitem__(self, index: tuple[Any, ...]) -> np.ndarray:
        lead = [
            range(*i.indices(n)) if isinstance(i, slice) else [i]
            for i, n in zip(index[: self.row_axis], self.shape, strict=False)
        ]
        rows = index[self.row_axis]
        rows = (
            range(*rows.indices(self.shape[self.row_axis]))
            if isinstance(rows, slice)
            else range(rows, rows + 1)
        )
        rest = index[self.row_axis + 1 :]
        combos = list(itertools.product(*lead))
        # Read straight into the result, one seek and one read per plane: no intermediate copies.
        out = np.empty((len(combos), len(rows), *self.row_shape), dtype=self.dtype)
        with self.path.open("rb", buffering=0) as f:
            for block, combo in zip(out, combos, strict=True):
                plane = int(np.ravel_multi_index(combo, self.shape[: self.row_axis])) if combo else 0
                start = self.offset + (plane * self.shape[self.row_axis] + rows.start) * self.row_bytes
                f.seek(start)
                got = f.readinto(memoryview(block).cast("B"))
                if got != block.nbytes:
                    raise CorruptFileError(
                        f"{self.path}: truncated at byte {start + (got or 0)}; "
                        "the file is incomplete, copy it again"
                    )
        out = out[(slice(None), slice(None), *rest)]
        if not self.dtype.isnative:
            out = out.astype(self.dtype.newbyteorder("="))
        shape = [len(r) for r, i in zip(lead, index, strict=False) if isinstance(i, slice)]
        out = out.reshape((*shape, *out.shape[1:]))
        return (
            out
            if isinstance(index[self.row_axis], slice)
            else out.reshape((*shape, *out.shape[len(shape) + 1 :]))
        )


def _physical_sizes(
    tif: tifffile.TiffFile, series: Any, ome: _OmeImage | None
) -> tuple[dict[str, float], dict[str, str | None]]:
    if ome is not None:
        return ome.sizes, ome.units
    sizes: dict[str, float] = {}
    units: dict[str, str | None] = {}
    page = series.pages[0] if series.pages else tif.pages.first
    ij = tif.imagej_metadata if tif.is_imagej else None
    if ij is not None:
        unit = space_unit(str(ij.get("unit", "")).encode().decode("unicode_escape") or None)
        for axis, tag in (("x", "XResolution"), ("y", "YResolution")):
            size = _resolution(page, tag)
            if size is not None and unit is not None:
                sizes[axis], units[axis] = size, unit
        if ij.get("spacing") and unit is not None:
            sizes["z"], units["z"] = float(ij["spacing"]), unit
        if ij.get("finterval"):
            sizes["t"], units["t"] = float(ij["finterval"]), "second"
        return sizes, units
    # Plain TIFF: trust the resolution only when given in centimetres, as microscope software writes it;
    # inch resolutions are almost always a screen's default (72 dpi) and say nothing of the specimen.
    unit_tag = page.tags.get("ResolutionUnit") if page is not None else None
    if unit_tag is not None and int(unit_tag.value) == 3:
        for axis, tag in (("x", "XResolution"), ("y", "YResolution")):
            size = _resolution(page, tag)
            if size is not None:
                sizes[axis], units[axis] = size * 1e4, "micrometer"
    return sizes, units


def _resolution(page: Any, tag: str) -> float | None:
    """Pixel size from a TIFF resolution tag (pixels per unit, as a rational)."""
    if page is None or tag not in page.tags:
        return None
    value = page.tags[tag].value
    numerator, denominator = value if isinstance(value, tuple) else (value, 1)
    if not numerator or not denominator or numerator == denominator:  # 1/1 means "unset"
        return None
    return float(denominator) / float(numerator)


def _count(axes: str, shape: tuple[int, ...]) -> int:
    return shape[axes.index("c")] if "c" in axes else 1


def _channels(axes: str, shape: tuple[int, ...], series: Any, ome: _OmeImage | None) -> tuple[Channel, ...]:
    count = _count(axes, shape)
    if ome is not None and len(ome.channels) == count:
        # Where the OME-XML gives no colour, the one its name's fluorophore has (DAPI blue), not the index's.
        defaults = default_channels(
            count, [label or f"Channel {i}" for i, (label, _) in enumerate(ome.channels)]
        )
        return tuple(
            Channel(label=default.label, color=colour or default.color)
            for default, (_, colour) in zip(defaults, ome.channels, strict=True)
        )
    photometric = getattr(series.pages[0], "photometric", None) if series.pages else None
    if count in (3, 4) and photometric == tifffile.PHOTOMETRIC.RGB:
        return rgb_channels(count)
    return default_channels(count)
