"""Vendor plate folders read into a ``PlateLayout``: file-name patterns (ImageXpress/MetaXpress, Operetta
exports, or the user's own), and Harmony's ``Index.idx.xml`` / ``Index.xml`` (Operetta, Opera Phenix).
Only names and headers are read here; pixels are read later, plane by plane (``PlateFieldSource``)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from fairimage.formats.base import MAX_CHANNELS
from fairimage.model.errors import CorruptFileError, InvalidInputError
from fairimage.model.plates.layout import (
    FORMATS,
    Field,
    Geometry,
    PixelSize,
    Plane,
    PlateChannel,
    PlateLayout,
    check_fields,
    missing_wells,
    parse_well,
    row_index,
    well_name,
)

IMAGE_SUFFIXES = (".tif", ".tiff", ".png")
MAX_FIELDS = 1 << 16  # fields of view in one well: far beyond any screen
HARMONY_INDEXES = ("Index.idx.xml", "Index.xml", "Index.ref.xml")
# Named fields of a pattern and what they match; numbers in vendor names count from 1.
_FIELDS = {
    "plate": r"(?P<plate>.+?)",
    "well": r"(?P<well>[A-Za-z]{1,2}\d{1,3})",
    "row": r"(?P<row>[A-Za-z]{1,2}|\d{1,3})",
    "column": r"(?P<column>\d{1,3})",
    "field": r"(?P<field>\d{1,4})",
    "channel": r"(?P<channel>[A-Za-z0-9]+?)",
    "z": r"(?P<z>\d{1,4})",
    "t": r"(?P<t>\d{1,5})",
}
# ImageXpress / MetaXpress: PLATE_B02_s3_w2.tif (a site and wavelength, the wavelength sometimes followed by
# a GUID), in TimePoint_N/ZStep_M folders for time series and stacks; _thumb files are previews.
IMAGEXPRESS = re.compile(
    r"^(?P<plate>.+?)_(?P<well>[A-Za-z]{1,2}\d{2})(?:_s(?P<field>\d+))?(?:_w(?P<channel>\d+))?"
    r"(?:[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})?\.tiff?$"
)
# Harmony's export names: r02c05f03p01-ch2sk1fk1fl1.tiff (row, column, field, plane, channel, timepoint).
OPERETTA = re.compile(
    r"^r(?P<row>\d{2})c(?P<column>\d{2})f(?P<field>\d{2,3})p(?P<z>\d{2,3})-ch(?P<channel>\d+)sk(?P<t>\d+)"
    r"fk\d+fl\d+\.tiff?$"
)


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """A user's file-name pattern (``{well}_f{field}_c{channel}.tif``) as a regular expression."""
    parts = re.split(r"(\{\w+\})", pattern)
    regex = []
    for part in parts:
        name = part[1:-1] if part.startswith("{") and part.endswith("}") else None
        if name is None:
            regex.append(re.escape(part))
        elif name in _FIELDS:
            regex.append(_FIELDS[name])
        else:
            known = ", ".join("{" + key + "}" for key in _FIELDS)
            raise InvalidInputError(f"--pattern {pattern!r}: {{{name}}} is not a field; use {known}")
    if "{well}" not in pattern and not ("{row}" in pattern and "{column}" in pattern):
        raise InvalidInputError(
            f"--pattern {pattern!r}: name the well, with {{well}} or {{row}} and {{column}}"
        )
    return re.compile("^" + "".join(regex) + "$")


def read_plate_folder(
    folder: Path, pattern: str | None = None, name: str | None = None, wells: int | None = None
) -> PlateLayout:
    """The plate in ``folder``: by its Harmony index if it has one, else by ``pattern``, else by the
    ImageXpress or Operetta naming, whichever names its images. Plates read from file names are of
    ``wells`` wells, or of the smallest standard format (96 wells at least) that holds every well named."""
    if not folder.is_dir():
        raise InvalidInputError(
            f"{folder}: not a folder; a plate is a folder of images (or an OME-Zarr plate)"
        )
    for index in HARMONY_INDEXES:
        found = sorted(folder.rglob(index))
        if found and pattern is None:
            return read_harmony(found[0], name)
    images = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    images = [p for p in images if "_thumb" not in p.name.lower()]
    if not images:
        raise InvalidInputError(f"{folder}: no TIFF or PNG images in it; is this the plate's folder?")
    if pattern is not None:
        return _read_named(folder, images, compile_pattern(pattern), "pattern", (name, pattern, wells))
    for kind, regex in (("imagexpress", IMAGEXPRESS), ("operetta", OPERETTA)):
        if regex.match(images[0].name):
            return _read_named(folder, images, regex, kind, (name, None, wells))
    raise InvalidInputError(
        f"{images[0]}: its name follows no plate layout fairimage knows (ImageXpress PLATE_B02_s1_w1.tif, "
        "Operetta r02c05f01p01-ch1sk1fk1fl1.tiff, or a Harmony Index.idx.xml); give its pattern with "
        "--pattern '{well}_f{field}_c{channel}.tif'"
    )


@dataclass
class _Named:
    row: int
    column: int
    field: int
    channel: str
    z: int
    t: int
    plate: str | None


def _read_named(
    folder: Path,
    images: list[Path],
    regex: re.Pattern[str],
    kind: str,
    given: tuple[str | None, str | None, int | None],
) -> PlateLayout:
    """A plate from its images' names; ``given`` holds what the user said: its name, pattern, format."""
    name, pattern, wells = given
    named: dict[Path, _Named] = {}
    for path in images:
        match = regex.match(path.name)
        if match is None:
            how = f"the pattern {pattern!r}" if pattern else f"the {kind} naming"
            raise InvalidInputError(
                f"{path}: its name does not follow {how} of the other images; rename or remove it, or give "
                "--pattern"
            )
        named[path] = _parse_name(path, match.groupdict())
    channel_names = sorted({n.channel for n in named.values()}, key=_natural)
    fields: dict[tuple[int, int, int], dict[tuple[int, int, int], Plane]] = {}
    for path, n in named.items():
        planes = fields.setdefault((n.row, n.column, n.field), {})
        key = (channel_names.index(n.channel), n.z, n.t)
        if key in planes:
            raise InvalidInputError(
                f"{path}: a second file for well {_well(n)} field {n.field + 1} channel {n.channel}"
                f"{_zt(n)} (the first is {planes[key].path}); remove one of them"
            )
        planes[key] = Plane(path)
    plate_names = {n.plate for n in named.values() if n.plate}
    if len(plate_names) > 1:
        listed = ", ".join(sorted(plate_names))
        raise InvalidInputError(
            f"{folder}: images of {len(plate_names)} plates ({listed}); ingest each plate's folder on its own"
        )
    items = [Field(r, c, f, planes) for (r, c, f), planes in sorted(fields.items())]
    geometry = Geometry.of_format(wells) if wells else Geometry.enclosing([(f.row, f.column) for f in items])
    z = 1 + max(n.z for n in named.values())
    t = 1 + max(n.t for n in named.values())
    missing = check_fields(items, geometry, len(channel_names), z, t)
    missing += missing_wells(geometry, {(f.row, f.column) for f in items})
    channels = tuple(
        PlateChannel(f"w{c}" if kind == "imagexpress" else f"channel {c}") for c in channel_names
    )
    return PlateLayout(
        name=name or (plate_names.pop() if plate_names else folder.name),
        kind=kind,
        geometry=geometry,
        channels=channels,
        fields=tuple(items),
        z_planes=z,
        timepoints=t,
        missing=tuple(missing),
    )


def _parse_name(path: Path, groups: dict[str, str | None]) -> _Named:
    if groups.get("well"):
        row, column = parse_well(groups["well"] or "")
    else:
        text = groups.get("row") or ""
        row = int(text) - 1 if text.isdigit() else row_index(text)
        column = int(groups.get("column") or 0) - 1
    z, t = _folder_number(path, "ZStep"), _folder_number(path, "TimePoint")
    return _Named(
        row=row,
        column=column,
        field=int(groups.get("field") or 1) - 1,
        channel=groups.get("channel") or "1",
        z=int(groups.get("z") or 0) - 1 if groups.get("z") else z,
        t=int(groups.get("t") or 0) - 1 if groups.get("t") else t,
        plate=groups.get("plate"),
    )


def _folder_number(path: Path, prefix: str) -> int:
    """MetaXpress keeps time points and z steps in TimePoint_N / ZStep_N folders."""
    for part in path.parent.parts:
        if part.startswith(prefix + "_") and part[len(prefix) + 1 :].isdigit():
            return int(part[len(prefix) + 1 :]) - 1
    return 0


def _natural(text: str) -> tuple[int, str]:
    return (int(text), "") if text.isdigit() else (1 << 30, text)


def _well(n: _Named) -> str:
    return well_name(n.row, n.column)


def _zt(n: _Named) -> str:
    return (f" z {n.z + 1}" if n.z else "") + (f" t {n.t + 1}" if n.t else "")


def read_harmony(index: Path, name: str | None = None) -> PlateLayout:
    """A plate from Harmony's index (PerkinElmer/Revvity Operetta CLS, Opera Phenix): geometry, wells, fields
    with positions, channels with names and wavelengths, pixel sizes, planes and timepoints."""
    try:
        root = ET.parse(index).getroot()
    except ET.ParseError as exc:
        raise CorruptFileError(f"{index}: not readable XML ({exc}); export the index again") from None
    for node in root.iter():  # Harmony's namespace changes with its version; the names do not
        node.tag = node.tag.rsplit("}", 1)[-1]
    plate = root.find("Plates/Plate")
    images = root.findall("Images/Image")
    if plate is None or not images:
        raise CorruptFileError(f"{index}: no Plates/Plate or Images/Image in it; is it a Harmony index?")
    largest_rows, largest_columns = FORMATS[max(FORMATS)]
    geometry = Geometry(
        _int(plate, "PlateRows", index, within=(1, largest_rows)),
        _int(plate, "PlateColumns", index, within=(1, largest_columns)),
    )
    # A plane or timepoint number beyond the count of images means a damaged index (and would make a plate
    # of millions of missing planes); fields and channels are only named, within generous bounds.
    count = len(images)
    channels: dict[int, PlateChannel] = {}
    fields: dict[tuple[int, int, int], dict[tuple[int, int, int], Plane]] = {}
    positions: dict[tuple[int, int, int], tuple[float, float]] = {}
    size: PixelSize | None = None
    for image in images:
        row = _int(image, "Row", index, within=(1, geometry.rows)) - 1
        column = _int(image, "Col", index, within=(1, geometry.columns)) - 1
        field_index = _int(image, "FieldID", index, within=(1, MAX_FIELDS)) - 1
        channel = _int(image, "ChannelID", index, within=(0, MAX_CHANNELS))
        plane_id = _int(image, "PlaneID", index, within=(1, count)) - 1
        key = (channel, plane_id, _int(image, "TimepointID", index, 0, within=(0, count)))
        channels.setdefault(channel, _harmony_channel(image))
        planes = fields.setdefault((row, column, field_index), {})
        planes[key] = Plane(_image_file(index, image.findtext("URL") or ""))
        x, y = _metres(image, "PositionX"), _metres(image, "PositionY")
        if x is not None and y is not None:
            positions[(row, column, field_index)] = (x * 1e6, y * 1e6)
        if size is None and _metres(image, "ImageResolutionX") is not None:
            x_size, y_size = _metres(image, "ImageResolutionX") or 0, _metres(image, "ImageResolutionY") or 0
            size = PixelSize(x_size * 1e6, (y_size or x_size) * 1e6)
    order = sorted(channels)
    renumbered = {
        key: {(order.index(c), z, t): plane for (c, z, t), plane in planes.items()}
        for key, planes in fields.items()
    }
    items = [
        Field(r, c, f, planes, position_um=positions.get((r, c, f)))
        for (r, c, f), planes in sorted(renumbered.items())
    ]
    z = 1 + max(z for planes in renumbered.values() for (_, z, _) in planes)
    t = 1 + max(t for planes in renumbered.values() for (_, _, t) in planes)
    missing = check_fields(items, geometry, len(order), z, t)
    missing += missing_wells(geometry, {(f.row, f.column) for f in items})
    return PlateLayout(
        name=name or plate.findtext("Name") or plate.findtext("PlateID") or index.parent.name,
        kind="harmony",
        geometry=geometry,
        channels=tuple(channels[c] for c in order),
        fields=tuple(items),
        z_planes=z,
        timepoints=t,
        pixel_size=size,
        missing=tuple(missing),
    )


def _harmony_channel(image: ET.Element) -> PlateChannel:
    def number(tag: str) -> float | None:
        text = image.findtext(tag)
        return float(text) if text and text.replace(".", "", 1).isdigit() else None

    name = image.findtext("ChannelName") or f"channel {image.findtext('ChannelID')}"
    return PlateChannel(name, number("MainEmissionWavelength"), number("MainExcitationWavelength"))


def _int(
    node: ET.Element, tag: str, index: Path, default: int | None = None, within: tuple[int, int] | None = None
) -> int:
    text = node.findtext(tag)
    if text is None and default is not None:
        return default
    try:
        value = int(text or "")
    except ValueError:
        raise CorruptFileError(f"{index}: <{tag}> is {text!r}, not a whole number") from None
    if within is not None and not within[0] <= value <= within[1]:
        raise CorruptFileError(f"{index}: <{tag}> is {value}, not between {within[0]} and {within[1]}")
    return value


def _image_file(index: Path, url: str) -> Path:
    """An image the index names, which must lie in the index's folder: an absolute URL, '..' or a link
    out of the folder would read files that are not the plate's."""
    folder = index.parent.resolve()
    path = index.parent / url
    if (
        not url
        or Path(url).is_absolute()
        or ".." in Path(url).parts
        or not path.resolve().is_relative_to(folder)
    ):
        raise CorruptFileError(
            f"{index}: the image URL {url!r} is not a file in the index's folder; export the plate again"
        )
    return path


def _metres(node: ET.Element, tag: str) -> float | None:
    element = node.find(tag)
    if element is None or not element.text:
        return None
    scale = {"m": 1.0, "mm": 1e-3, "um": 1e-6, "µm": 1e-6, "nm": 1e-9}.get(element.get("Unit", "m"), 1.0)
    try:
        return float(element.text) * scale
    except ValueError:
        return None
