"""A folder of section images (TIFF, PNG or JPEG; one per z, numbered in their names, e.g. section_1.tif ...
section_200.tif) read as one 3D image. A multi-page TIFF may hold several consecutive sections (a long
series saved as stacks of 100, say): its pages are its sections, in order.

Only names and headers are read when the folder is opened: every problem (a file that is not an image, a
gap or a duplicate in the numbering, a section of another size, pixel type or pixel size) is found before a
pixel is converted, and all of them are told in one line. Pixels are read later, a z-range at a time.
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fairimage.formats.base import ImageSource, OpenedFile, Region
from fairimage.formats.raster import RasterReader, picture_kind, read_picture_header
from fairimage.formats.registry import open_file, sniff_format
from fairimage.formats.tiff import TiffReader, TiffSeriesSource
from fairimage.model.errors import CorruptFileError, FairimageError, InvalidInputError
from fairimage.model.image import ImageMetadata, make_axes
from fairimage.model.units import Length, convert_length

# The last run of digits in a name (without its extension) is the section's number: section_0007.tif is 7.
_NUMBER = re.compile(r"(\d+)(?=\D*$)")
_EXTENSION = re.compile(r"(\.ome)?\.(tiff?|png|jpe?g)$", re.IGNORECASE)
_SHOWN = 5  # names listed in a message before "and N more"
# Sections decoded or open at once: a z-range is read whole-plane when its planes are small (then each
# section is read once, and need not stay open) and one plane at a time otherwise.
_OPEN_AT_MOST = 32
# Pixel sizes that differ by less than this (relative) are the same: files round them differently.
_SAME_SIZE = 1e-6


@dataclass(frozen=True)
class Section:
    """One section file: its number in the series, format and what its header says."""

    path: Path
    number: int
    format: str  # as its reader names it: tiff, ome-tiff, imagej-tiff, png, jpeg
    header: ImageMetadata  # yx, or cyx for colour sections; zyx or czyx for a file of several sections
    z_spacing: Length | None = None  # the distance between sections the file records, if any

    @property
    def depth(self) -> int:
        """How many sections the file holds."""
        axes = self.header.axis_names
        return self.header.shape[axes.index("z")] if "z" in axes else 1

    @property
    def plane_shape(self) -> tuple[int, ...]:
        """The shape of one of its sections: (y, x), or (c, y, x)."""
        axes = self.header.axis_names
        return tuple(n for axis, n in zip(axes, self.header.shape, strict=True) if axis != "z")


@dataclass(frozen=True)
class SectionFolder:
    """A checked folder of sections, in z order, and the 3D image they make."""

    folder: Path
    sections: tuple[Section, ...]
    metadata: ImageMetadata
    warnings: tuple[str, ...] = ()

    @property
    def described(self) -> str:
        """The folder and its sections, as the catalog names the original: "em (200 sections)", or
        "em (1000 sections in 10 files)"."""
        depth = sum(section.depth for section in self.sections)
        files = "" if depth == len(self.sections) else f" in {len(self.sections)} files"
        return f"{self.folder.name} ({depth} sections{files})"

    @property
    def format(self) -> str:
        """How the original is named in the catalog: sections/tiff, sections/png (or both, +)."""
        kinds = sorted({"tiff" if "tiff" in s.format else s.format for s in self.sections})
        return "sections/" + "+".join(kinds)


def read_section_folder(
    folder: Path, z_spacing: Length | None = None, pixel_size: Length | None = None
) -> SectionFolder:
    """Check a folder of sections from their names and headers alone; InvalidInputError listing every
    problem (as one line) if they do not make one volume. ``z_spacing`` and ``pixel_size``, if given, win
    over what the files record (ImageJ's spacing, OME's PhysicalSizeZ; their resolution or PhysicalSizeX/Y),
    which must agree. Spatial sizes are in the z spacing's unit, so that the z scale is exactly it."""
    if not folder.is_dir():
        raise InvalidInputError(f"{folder}: not a folder; --sections takes a folder of section images")
    entries = sorted(child for child in folder.iterdir() if not child.name.startswith("."))
    if not entries:
        raise InvalidInputError(f"{folder}: no section images (the folder is empty)")
    problems: list[str] = []
    images = _image_files(entries, problems)
    numbered, gaps = _numbered(images, problems)
    sections = [section for section in (_section(path, n, problems) for path, n in numbered) if section]
    if gaps and not _numbered_by_first_section(sections):
        problems.append(f"sections missing: {_listed(gaps)}")
    if not problems and not sections:
        problems.append("no section images")
    warnings: list[str] = []
    hints: list[str] = []  # problems with their own fix, told last
    scale: tuple[float, float] | None = None
    if sections:
        _check_alike(sections, problems)
        z_spacing = _z_spacing(sections, z_spacing, problems, warnings)
        if z_spacing is None:
            hints.append("the sections record no z spacing: give it with --z-spacing, e.g. 30nm")
            problems.append(hints[-1])
        unit = z_spacing.unit if z_spacing else pixel_size.unit if pixel_size else "micrometer"
        scale = _pixel_size(sections, unit, pixel_size, problems, warnings)
        if scale is None:
            hints.append("the sections record no pixel size: give it with --pixel-size, e.g. 4nm")
            problems.append(hints[-1])
    if problems:
        fix = "fix or remove them, then ingest the folder again"
        told = [*problems[: len(problems) - len(hints)], fix] if len(problems) > len(hints) else []
        raise InvalidInputError(f"{folder}: {'; '.join(told + hints)}")
    assert scale is not None and z_spacing is not None  # known whenever there are sections and no problem
    volume = _volume(folder, sections, z_spacing, scale)
    return SectionFolder(folder, tuple(sections), volume, tuple(warnings))


def _image_files(entries: list[Path], problems: list[str]) -> list[Path]:
    """The entries that are TIFF, PNG or JPEG files by their first bytes; the others are problems."""
    images, empty, others = [], [], []
    for entry in entries:
        if entry.is_file() and entry.stat().st_size == 0:
            empty.append(entry.name)
        elif entry.is_file() and isinstance(sniff_format(entry), TiffReader | RasterReader):
            images.append(entry)
        else:
            others.append(entry.name + ("/" if entry.is_dir() else ""))
    if others:
        problems.append(f"not section images (TIFF, PNG or JPEG): {_names(others)}")
    if empty:
        problems.append(f"empty files (0 bytes): {_names(empty)}")
    return images


def _numbered(images: list[Path], problems: list[str]) -> tuple[list[tuple[Path, int]], list[str]]:
    """The images named like most of them (a stem with a number), by number (so section_2 comes before
    section_10), and the gaps in their numbering; names that differ and duplicate numbers are problems."""
    found: dict[Path, tuple[str, int]] = {}
    for path in images:
        stem = _stem(path.name)
        match = _NUMBER.search(stem)
        if match is not None:
            found[path] = (stem[: match.start()] + "#" + stem[match.end() :], int(match.group(1)))
    patterns = Counter(pattern for pattern, _ in found.values())
    pattern = patterns.most_common(1)[0][0] if patterns else None
    odd = [path.name for path in images if found.get(path, ("", 0))[0] != pattern]
    if odd:
        expected = f" (the others are numbered {pattern.replace('#', 'N')})" if pattern else ""
        problems.append(f"not numbered like the other sections{expected}: {_names(odd)}")
    numbered = sorted(
        ((path, number) for path, (kind, number) in found.items() if kind == pattern),
        key=lambda item: (item[1], item[0].name),
    )
    by_number: dict[int, list[str]] = {}
    for path, number in numbered:
        by_number.setdefault(number, []).append(path.name)
    duplicates = [f"{n} ({' and '.join(names)})" for n, names in by_number.items() if len(names) > 1]
    if duplicates:
        problems.append(f"sections numbered twice: {_listed(duplicates)}")
    return numbered, _gaps(sorted(by_number), by_number)


def _numbered_by_first_section(sections: list[Section]) -> bool:
    """Whether files of several sections are numbered by their first section (stack_1, stack_101,
    stack_201 for stacks of 100), so that gaps in the files' numbers are none in the sections'."""
    return any(section.depth > 1 for section in sections) and all(
        after.number - before.number == before.depth for before, after in itertools.pairwise(sections)
    )


def _stem(name: str) -> str:
    """A name without its image extension (section_7.ome.tif is section_7), else without its last one."""
    stripped = _EXTENSION.sub("", name)
    return stripped if stripped != name else Path(name).stem


def _gaps(numbers: list[int], names: dict[int, list[str]]) -> list[str]:
    """Each run of missing numbers between the first and last section, with the sections around it."""
    gaps = []
    for before, after in itertools.pairwise(numbers):
        if after - before > 1:
            missing = str(before + 1) if after - before == 2 else f"{before + 1}-{after - 1}"
            gaps.append(f"{missing} (between {names[before][0]} and {names[after][0]})")
    return gaps


def _section(path: Path, number: int, problems: list[str]) -> Section | None:
    """A section's header, or None (and a problem) if it is not one readable 2D picture."""
    try:
        reader = sniff_format(path)
        if isinstance(reader, RasterReader):
            return Section(path, number, picture_kind(path), read_picture_header(path))
        with open_file(path) as opened:
            if len(opened.images) != 1:
                problems.append(f"{path.name} holds {len(opened.images)} images, not one section")
                return None
            source = opened.images[0]
            header = source.metadata
            if header.axis_names not in ("yx", "cyx", "zyx", "czyx"):
                shape = " x ".join(map(str, header.shape))
                problems.append(
                    f"{path.name} is a {header.axis_names} image ({shape}), not sections (yx or zyx)"
                )
                return None
            recorded = source.recorded_z_spacing if isinstance(source, TiffSeriesSource) else None
            return Section(path, number, opened.format, header, recorded)
    except FairimageError as exc:
        problems.append(exc.message.replace(str(path), path.name))
        return None


def _check_alike(sections: list[Section], problems: list[str]) -> None:
    """Every section of the size, samples and pixel type of most of them."""

    def described(section: Section) -> str:
        shape = section.plane_shape
        samples = f", {shape[0]} samples" if len(shape) == 3 else ""
        return f"{' x '.join(map(str, shape[-2:]))} {section.header.dtype}{samples}"

    _odd_ones(sections, described, problems)


def _odd_ones(
    sections: Sequence[Section], key: Callable[[Section], Hashable], problems: list[str]
) -> Hashable:
    """The value most sections have; a problem naming the sections with another, grouped by value."""
    counts = Counter(key(section) for section in sections)
    usual = counts.most_common(1)[0][0]
    if len(counts) > 1:
        groups: dict[Hashable, list[str]] = {}
        for section in sections:
            if key(section) != usual:
                groups.setdefault(key(section), []).append(section.path.name)
        told = ", ".join(f"{_names(names)} ({value})" for value, names in groups.items())
        problems.append(f"sections unlike the others ({usual}): {told}")
    return usual


def _z_spacing(
    sections: list[Section], given: Length | None, problems: list[str], warnings: list[str]
) -> Length | None:
    """The distance between sections: ``given``, else the files' own, which must agree (a problem names
    those that do not); None where no file records one."""

    def recorded(section: Section) -> str:
        spacing = section.z_spacing
        return f"{spacing.value:g} {spacing.unit}" if spacing else "without a z spacing"

    def same(spacing: Length | None, other: Length) -> bool:
        return spacing is not None and _same(
            (convert_length(spacing.value, spacing.unit, other.unit),), (other.value,)
        )

    if given is not None:
        other = sorted(
            {
                recorded(section)
                for section in sections
                if section.z_spacing and not same(section.z_spacing, given)
            }
        )
        if other:
            warnings.append(
                f"the sections record a z spacing of {', '.join(other)}; --z-spacing {given} was used"
            )
        return given
    first = next((section.z_spacing for section in sections if section.z_spacing), None)
    if first is None:
        return None
    # Spacings that differ only in how they are written (30 nm, 0.03 micrometer) are the first's.
    _odd_ones(sections, lambda s: str(first) if same(s.z_spacing, first) else recorded(s), problems)
    return first  # where the sections disagree, the folder is refused for it already


def _pixel_size(
    sections: list[Section],
    unit: str,
    given: Length | None,
    problems: list[str],
    warnings: list[str],
) -> tuple[float, float] | None:
    """The (y, x) pixel size in ``unit`` (the z spacing's): ``given``, else the files' own, which must
    agree; None where no file records one."""

    def recorded(section: Section) -> str:
        size = _recorded_size(section.header, unit)
        return f"{size[0]:g} x {size[1]:g} {unit}" if size else "without a pixel size"

    if given is not None:
        side = convert_length(given.value, given.unit, unit)
        other = sorted(
            {
                recorded(section)
                for section in sections
                if not _same(_recorded_size(section.header, unit), (side, side))
            }
            - {"without a pixel size"}
        )
        if other:
            warnings.append(
                f"the sections record a pixel size of {', '.join(other)}; --pixel-size {given} was used"
            )
        return side, side
    usual = _odd_ones(sections, recorded, problems)
    size = _recorded_size(sections[0].header, unit)
    if usual == "without a pixel size":
        return None
    return size or (1.0, 1.0)  # where the first has none, the others' differ: a problem already


def _recorded_size(header: ImageMetadata, unit: str) -> tuple[float, float] | None:
    """A section's (y, x) pixel size in ``unit``, if its file records one with a length unit."""
    axes = {axis.name: (axis, scale) for axis, scale in zip(header.axes, header.scale, strict=True)}
    sizes = []
    for name in "yx":
        axis, scale = axes[name]
        if axis.unit is None:
            return None
        try:
            sizes.append(convert_length(scale, axis.unit, unit))
        except KeyError:  # a unit that is not a length fairimage converts
            return None
    return sizes[0], sizes[1]


def _same(size: tuple[float, ...] | None, other: tuple[float, ...]) -> bool:
    """Whether a recorded size is ``other`` (a size not recorded is not)."""
    return size is not None and all(
        math.isclose(a, b, rel_tol=_SAME_SIZE) for a, b in zip(size, other, strict=True)
    )


def _volume(
    folder: Path, sections: list[Section], z_spacing: Length, scale: tuple[float, float]
) -> ImageMetadata:
    """The 3D image: the sections' axes with z before y (after c), z spaced as given."""
    first = sections[0].header
    axes = "czyx" if "c" in first.axis_names else "zyx"
    sizes = {"c": 1.0, "z": z_spacing.value, "y": scale[0], "x": scale[1]}
    depth = sum(section.depth for section in sections)
    shape = dict(zip(first.axis_names, first.shape, strict=True)) | {"z": depth}
    unit = z_spacing.unit
    # What the files say of their acquisition, where every section says the same (its instrument, say).
    shared = {
        key: value
        for key, value in first.acquisition.items()
        if all(s.header.acquisition.get(key) == value for s in sections)
    }
    return ImageMetadata(
        name=folder.name,
        axes=make_axes(axes, {"z": unit, "y": unit, "x": unit}),
        shape=tuple(shape[name] for name in axes),
        dtype=first.dtype,
        scale=tuple(sizes[name] for name in axes),
        channels=first.channels,
        acquisition=shared,
    )


class SectionsSource:
    """The sections of a SectionFolder as one ImageSource. A read opens the files of its z-range and closes
    those outside it, so that one z-chunk's worth of files (at most ``_OPEN_AT_MOST``) is open at once,
    whatever their number; TIFF sections are read by rows, PNG and JPEG are decoded whole."""

    def __init__(self, folder: SectionFolder) -> None:
        self.folder = folder
        self._metadata = folder.metadata
        self._z = folder.metadata.axis_names.index("z")
        # The volume's first plane in each file: file i holds planes starts[i] .. starts[i + 1] - 1.
        self._starts = list(itertools.accumulate((s.depth for s in folder.sections), initial=0))
        self._open: dict[int, tuple[ExitStack, ImageSource]] = {}  # by file

    @property
    def metadata(self) -> ImageMetadata:
        return self._metadata

    def read(self, region: Region) -> np.ndarray:
        region = tuple(slice(*r.indices(n)) for r, n in zip(region, self._metadata.shape, strict=True))
        wanted = range(*region[self._z].indices(self._metadata.shape[self._z]))
        files = range(self._file(wanted.start), self._file(wanted.stop - 1) + 1)
        for index in [index for index in self._open if index not in files]:
            self._close(index)
        plane_region = region[: self._z] + region[self._z + 1 :]
        out: np.ndarray | None = None
        for position, z in enumerate(wanted):
            plane = self._read_plane(z, plane_region)
            if out is None:
                shape = list(plane.shape)
                shape.insert(self._z, len(wanted))
                out = np.empty(shape, dtype=plane.dtype)
            out[(slice(None),) * self._z + (position,)] = plane
        assert out is not None  # a region has at least one z
        return out

    def _file(self, z: int) -> int:
        return bisect.bisect_right(self._starts, z) - 1

    def _read_plane(self, z: int, region: Region) -> np.ndarray:
        """Plane ``z`` of the volume (in ``region``), from the file that holds it."""
        index = self._file(z)
        section = self.folder.sections[index]
        axes = section.header.axis_names
        if "z" in axes:  # a file of several sections: its plane z - start
            at = axes.index("z")
            local = z - self._starts[index]
            region = (*region[:at], slice(local, local + 1), *region[at:])
        if index in self._open:
            pixels = self._open[index][1].read(region)
        else:
            stack = ExitStack()
            try:
                source = self._section_source(stack, section)
                pixels = source.read(region)
            except BaseException:
                stack.close()
                raise
            if len(self._open) < _OPEN_AT_MOST:
                self._open[index] = (stack, source)
            else:
                stack.close()
        return pixels.squeeze(axes.index("z")) if "z" in axes else pixels

    @staticmethod
    def _section_source(stack: ExitStack, section: Section) -> ImageSource:
        opened: OpenedFile = stack.enter_context(open_file(section.path))
        source = opened.images[0] if len(opened.images) == 1 else None
        header = section.header
        if source is None or (source.metadata.shape, source.metadata.dtype) != (header.shape, header.dtype):
            raise CorruptFileError(
                f"{section.path}: changed since its header was read (it is no longer a "
                f"{' x '.join(map(str, header.shape))} {header.dtype} section); ingest the folder again"
            )
        return source

    def _close(self, index: int) -> None:
        stack, _ = self._open.pop(index)
        stack.close()

    def close(self) -> None:
        """Close every section file still open."""
        for index in list(self._open):
            self._close(index)


def _names(names: Iterable[str]) -> str:
    return _listed(list(names))


def _listed(items: list[str]) -> str:
    """Up to ``_SHOWN`` items, then how many more."""
    shown = ", ".join(items[:_SHOWN])
    return shown if len(items) <= _SHOWN else f"{shown} and {len(items) - _SHOWN} more"
