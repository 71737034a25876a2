"""Hostile input for every reader: real files (written by the formats' own libraries, or shipped with
pydicom), mutated, then opened and read through each reader's public entry point. Mutations are bit flips,
overwrites with interesting values, truncation, duplicated or deleted spans and, for JSON, XML, CSV and YAML,
structure-aware changes (keys deleted, wrong types, huge or negative numbers, deep nesting, path tricks).

A case passes when the reader succeeds or raises a FairimageError; any other exception, a case that runs
over its time bound, or memory allocated for a size only declared, is a bug. Cases are drawn from a fixed
seed and numbered: a failure names its case, and ``FUZZ_REPLAY=tiff:123 pytest tests/test_fuzz.py -k
replay`` runs that one case with its full traceback. The default run draws a few dozen cases per reader;
``-m slow`` draws 10 000 per reader.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import os
import random
import resource
import shutil
import signal
import struct
import time
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import numpy as np
import pydicom
import pytest
import tifffile
import yaml
import zarr
from PIL import Image
from pydicom.data import get_testdata_file

from fairimage.formats import open_file
from fairimage.formats.omezarr import read_zarr_plate
from fairimage.formats.plate_fields import PlateFieldSource, check_planes
from fairimage.formats.platemap import read_platemap
from fairimage.formats.plates import read_plate_folder
from fairimage.model.errors import FairimageError
from fairimage.model.image import ImageMetadata
from fairimage.model.plates.layout import Geometry
from fairimage.ngff.metadata import parse_multiscale
from fairimage.services.curation.study_metadata import read_study_file, validate
from tests import plate_samples, samples

pytestmark = pytest.mark.filterwarnings("ignore")  # damaged files make pydicom, tifffile and zarr warn

SEED = 20250607
DEFAULT_CASES = 30
SLOW_CASES = 10_000
CASE_SECONDS = 5.0
CASE_PEAK = 512 << 20  # resident memory a case may add: its input is a few KiB
# Address space a case may add, a guard for the machine: beyond it an allocation fails (MemoryError, a bug
# the case reports). Larger than CASE_PEAK, since reading a DICOM element of a declared 4 GiB reserves that
# much, untouched, before the file's end cuts it short (Python's file.read(n)).
CASE_HEADROOM = 6 << 30
BOMB_PEAK = 128 << 20  # what reading a file that only declares a huge size may allocate

Mutation = Callable[[random.Random, bytes], tuple[bytes, str]]


# -- running one case ----------------------------------------------------------------------------------


class CaseTimeout(BaseException):
    """Raised by the alarm; a BaseException, so that no reader's ``except Exception`` can swallow it."""


@contextmanager
def time_bound(seconds: float) -> Iterator[None]:
    """Raise CaseTimeout after ``seconds`` of wall time, then give back pytest-timeout's own alarm."""

    def expire(signum: int, frame: object) -> None:
        raise CaseTimeout(f"over {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    pending, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    started = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if pending:
            signal.setitimer(signal.ITIMER_REAL, max(pending - (time.monotonic() - started), 0.001))


def _vm_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * resource.getpagesize()


@contextmanager
def address_space_cap(headroom: int) -> Iterator[None]:
    """No more than ``headroom`` bytes of new address space: an allocation for a declared size fails
    (MemoryError, a bug the case reports) instead of taking the machine's memory."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = _vm_bytes() + headroom
    resource.setrlimit(resource.RLIMIT_AS, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _status(field: str) -> int:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith(field + ":"))
    return int(line.split()[1]) << 10


@contextmanager
def peak_memory() -> Iterator[list[int]]:
    """The peak resident memory added while the block runs, in bytes (Linux: VmHWM, reset first)."""
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # resets the peak to the current resident size
    before, added = _status("VmRSS"), [0]
    try:
        yield added
    finally:
        added[0] = _status("VmHWM") - before


def outcome(exercise: Callable[[Path], None], path: Path) -> BaseException | None:
    """None if the reader succeeded or refused with a FairimageError naming the file; else what it raised."""
    try:
        with peak_memory() as added, address_space_cap(CASE_HEADROOM), time_bound(CASE_SECONDS):
            exercise(path)
    except FairimageError as error:
        message = str(error)
        if "\n" in message or not _names_file(message, path):
            return AssertionError(f"{type(error).__name__} not one line naming the file: {message!r}")
    except KeyboardInterrupt:
        raise
    except BaseException as error:  # anything else is the bug this suite looks for (a Rust panic too)
        return error
    if added[0] > CASE_PEAK:
        return MemoryError(f"peak resident memory grew by {added[0] >> 20} MiB")
    return None


def _names_file(message: str, path: Path) -> bool:
    """Plate and folder readers name the file inside the folder that is wrong; any part of the path does."""
    return path.name in message or any(part in message for part in path.parts[-3:] if len(part) > 3)


# -- exercising readers through their public entry points ----------------------------------------------


def plane_region(meta: ImageMetadata, last: bool = False) -> tuple[slice, ...]:
    """The first (or last) plane's first (or last) 256 x 256 pixels, one channel."""
    region = []
    for name, size in zip(meta.axis_names, meta.shape, strict=True):
        if name in "yx":
            region.append(slice(max(size - 256, 0), size) if last else slice(0, min(size, 256)))
        else:
            region.append(slice(size - 1, size) if last and size else slice(0, 1))
    return tuple(region)


def read_images(images: list[Any]) -> None:
    for image in images[:3]:
        meta = image.metadata
        image.read(plane_region(meta))
        image.read(plane_region(meta, last=True))


def read_image_file(path: Path) -> None:
    """TIFF, OME-TIFF, PNG, JPEG, DICOM and OME-Zarr, through ``fairimage.formats.open_file``."""
    with open_file(path) as opened:
        read_images(opened.images)


def read_plate(path: Path) -> None:
    """A vendor plate folder, as plate ingest reads it: layout, plane headers, a field's first plane."""
    layout = read_plate_folder(path)
    shape, dtype = check_planes(layout)
    read_images([PlateFieldSource(layout, item, shape, dtype) for item in layout.fields[:2]])


def read_zarr_plate_folder(path: Path) -> None:
    plate = read_zarr_plate(path)
    read_images(list(plate.sources.values()))


def read_platemap_file(path: Path) -> None:
    read_platemap(path, Geometry(8, 12))


def read_study(path: Path) -> None:
    validate(read_study_file(path))


def read_multiscale(path: Path) -> None:
    """parse_multiscale on a group's attributes (a zarr.json's or .zattrs' JSON object; zarr itself refuses
    documents that are not JSON objects, so those are not the parser's to see)."""
    try:
        document = json.loads(path.read_text())
    except (ValueError, RecursionError):
        return
    attrs = document.get("attributes", document) if isinstance(document, dict) else None
    if isinstance(attrs, dict):
        parse_multiscale(attrs, path.name)


# -- byte-level mutations ------------------------------------------------------------------------------

INTERESTING_BYTES = (0x00, 0xFF, 0x7F, 0x80, 0x01, 0xFE)
INTERESTING_INTS = (0, 1, 0x7F, 0xFF, 0x7FFF, 0xFFFF, 0x10000, 100_000, 0x7FFFFFFF, 0xFFFFFFFF, 1 << 31)


def _offset(rng: random.Random, data: bytes) -> int:
    """Anywhere, but half the time in the first 512 bytes, where headers are."""
    limit = len(data) if rng.random() < 0.5 else min(len(data), 512)
    return rng.randrange(max(limit, 1))


def flip_bits(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    out = bytearray(data)
    where = [_offset(rng, data) for _ in range(rng.randint(1, 8))]
    for at in where:
        if at < len(out):
            out[at] ^= 1 << rng.randrange(8)
    return bytes(out), f"flip bits at {where}"


def overwrite_byte(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    out, at, value = bytearray(data), _offset(rng, data), rng.choice(INTERESTING_BYTES)
    out[at : at + 1] = bytes([value])
    return bytes(out), f"byte {value:#04x} at {at}"


def overwrite_int(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    fmt = rng.choice(("<H", ">H", "<I", ">I", "<Q", ">Q"))
    value = rng.choice(INTERESTING_INTS) & ((1 << (8 * struct.calcsize(fmt))) - 1)
    at = _offset(rng, data)
    packed = struct.pack(fmt, value)
    return data[:at] + packed + data[at + len(packed) :], f"{fmt} {value} at {at}"


def truncate(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    at = rng.randrange(len(data)) if data else 0
    return data[:at], f"truncate at {at} of {len(data)}"


def duplicate_span(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    start = _offset(rng, data)
    span = data[start : start + rng.randint(1, 256)]
    at = _offset(rng, data)
    return data[:at] + span * rng.randint(1, 4) + data[at:], f"duplicate {len(span)} bytes at {at}"


def delete_span(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    start = _offset(rng, data)
    end = start + rng.randint(1, 256)
    return data[:start] + data[end:], f"delete bytes {start}:{end}"


def random_span(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    at, length = _offset(rng, data), rng.randint(1, 64)
    return data[:at] + rng.randbytes(length) + data[at + length :], f"{length} random bytes at {at}"


BYTE_MUTATIONS: tuple[Mutation, ...] = (
    flip_bits,
    overwrite_byte,
    overwrite_int,
    truncate,
    duplicate_span,
    delete_span,
    random_span,
)


def mutate_bytes(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    said = []
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        data, what = rng.choice(BYTE_MUTATIONS)(rng, data)
        said.append(what)
    return data, "; ".join(said)


# -- structure-aware mutations: JSON and YAML documents ------------------------------------------------

DEEP = "\x00deep\x00"  # stands for nesting too deep for the serialiser; replaced in the text
HOSTILE_VALUES: tuple[Any, ...] = (
    None,
    True,
    0,
    -1,
    -(2**63),
    2**64,
    10**30,
    1e308,
    -1e308,
    0.5,
    "",
    "x",
    "-1",
    "1e999",
    "../../etc",
    "/etc/passwd",
    "..",
    "a\x00b",
    "é" * 3000,
    [],
    {},
    [None],
    {"": None},
    DEEP,
)


def _nodes(tree: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    children = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else ()
    for key, value in children:
        yield from _nodes(value, (*path, key))


def _get(tree: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        tree = tree[key]
    return tree


def _numbers_near(value: Any) -> list[Any]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return [10**12, -(10**12)]
    return [-value, value * 10**9, -1, 0, 2**63, float(value) + 0.5, str(value), [value]]


def mutate_tree(rng: random.Random, tree: Any) -> tuple[Any, str]:
    """One change at a random node: deleted, replaced by a hostile value or a near number, renamed,
    duplicated, emptied, swapped with another node."""
    tree = copy.deepcopy(tree)
    paths = list(_nodes(tree))
    path = rng.choice(paths[1:] or paths)
    if not path:
        return rng.choice(HOSTILE_VALUES), "root replaced"
    parent, key = _get(tree, path[:-1]), path[-1]
    action = rng.choice(("delete", "hostile", "hostile", "number", "rename", "repeat", "empty", "swap"))
    if action == "delete":
        del parent[key]
    elif action == "hostile":
        parent[key] = rng.choice(HOSTILE_VALUES)
    elif action == "number":
        parent[key] = rng.choice(_numbers_near(parent[key]))
    elif action == "rename" and isinstance(parent, dict):
        parent[rng.choice((str(key).upper(), f"{key}_", ""))] = parent.pop(key)
    elif action == "repeat" and isinstance(parent, list):
        parent[key : key + 1] = [parent[key]] * rng.choice((0, 2, 50))
    elif action == "empty":
        parent[key] = type(parent[key])() if isinstance(parent[key], (list, dict, str)) else None
    else:
        other = rng.choice(paths)
        if other[: len(path)] != path and path[: len(other)] != other:
            parent[key] = copy.deepcopy(_get(tree, other))
    return tree, f"{action} at {'/'.join(map(str, path))}"


def dump_json(tree: Any) -> bytes:
    text = json.dumps(tree, ensure_ascii=False)
    return text.replace(json.dumps(DEEP), "[" * 100_000 + "]" * 100_000).encode()


def dump_yaml(tree: Any) -> bytes:
    text = yaml.safe_dump(tree, allow_unicode=True, sort_keys=False, width=1 << 20)
    deep = yaml.safe_dump(DEEP).removesuffix("\n...\n").strip()
    return text.replace(deep, "[" * 5_000 + "]" * 5_000).encode()


YAML_TRICKS = (
    # exponential aliases ("billion laughs"): tiny text, a huge tree if anything walks it
    "a: &a ['lol','lol','lol','lol','lol','lol','lol','lol','lol']\n"
    + "".join(f"{n}: &{n} [{','.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True))
    + "study: {title: *i, description: *i, keywords: *i}\n",
    "study: !!python/object/apply:os.system ['true']\n",
    "study: &x {title: *x}\n",
    "study:\n  title: [\n",
    "\t- tab\n",
    "? [a, b]\n: complex key\n",
    "study: {title: !!binary AAAA}\n",
    "study: {title: 2025-13-45}\n",
    "%YAML 9.9\n---\nstudy: {}\n",
    "---\nstudy: {}\n---\nother: {}\n",
)


def tree_mutation(
    load: Callable[[bytes], Any], dump: Callable[[Any], bytes], text_tricks: tuple[str, ...] = ()
) -> Mutation:
    """A mutation that edits a parsed document and writes it back (or, sometimes, swaps in a trick)."""

    def mutate(rng: random.Random, data: bytes) -> tuple[bytes, str]:
        if text_tricks and rng.random() < 0.1:
            trick = rng.randrange(len(text_tricks))
            return text_tricks[trick].encode(), f"text trick {trick}"
        tree, said = load(data), []
        for _ in range(rng.choice((1, 1, 2, 3))):
            tree, what = mutate_tree(rng, tree)
            said.append(what)
        return dump(tree), "; ".join(said)

    return mutate


json_mutation = tree_mutation(json.loads, dump_json)
yaml_mutation = tree_mutation(yaml.safe_load, dump_yaml, YAML_TRICKS)


# -- structure-aware mutations: XML, CSV, PNG chunks, DICOM elements, zip members -----------------------

XML_TEXTS = ("", "-1", "0", "99999999999999999999", "1e308", "nan", "abc", "../../etc/passwd", "/etc/passwd")
XML_TRICKS = (
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">'
    '<!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;"><!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">]><r>&f;&f;</r>',
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
    "<r>" + "<a>" * 50_000 + "</a>" * 50_000 + "</r>",
    "<r><unclosed></r>",
    "\ufeff<r/>",
)


def xml_mutation(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    if rng.random() < 0.1:
        trick = rng.randrange(len(XML_TRICKS))
        return XML_TRICKS[trick].encode(), f"xml trick {trick}"
    root = ET.fromstring(data)
    elements = list(root.iter())
    said = []
    for _ in range(rng.choice((1, 1, 2, 3))):
        element = rng.choice(elements)
        parent = next((p for p in elements if element in list(p)), None)
        action = rng.choice(("text", "text", "attribute", "delete", "duplicate", "deep"))
        if action == "text":
            element.text = rng.choice(XML_TEXTS)
        elif action == "attribute" and element.attrib:
            name = rng.choice(sorted(element.attrib))
            if rng.random() < 0.5:
                del element.attrib[name]
            else:
                element.attrib[name] = rng.choice(XML_TEXTS)
        elif action == "delete" and parent is not None:
            parent.remove(element)
            elements = list(root.iter())
        elif action == "duplicate" and parent is not None:
            for _ in range(rng.choice((1, 20))):
                parent.append(copy.deepcopy(element))
            elements = list(root.iter())
        elif action == "deep":
            child = element
            for _ in range(200):
                child = ET.SubElement(child, element.tag)
        said.append(f"{action} {element.tag.rsplit('}', 1)[-1]}")
    return ET.tostring(root), "; ".join(said)


CSV_CELLS = ("", "Z99", "A0", "A13", "I1", "-1", "1e308", "nan", "10 uM uM", "x" * 10_000, "\x00", '"', "A01")


def csv_mutation(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    text = data.decode("utf-8")
    dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    rows = list(csv.reader(text.splitlines(), dialect))
    said = []
    for _ in range(rng.choice((1, 1, 2, 3))):
        r = rng.randrange(len(rows))
        action = rng.choice(("cell", "cell", "drop cell", "extra cell", "drop row", "repeat row", "header"))
        if action == "cell" and rows[r]:
            rows[r][rng.randrange(len(rows[r]))] = rng.choice(CSV_CELLS)
        elif action == "drop cell" and rows[r]:
            del rows[r][rng.randrange(len(rows[r]))]
        elif action == "extra cell":
            rows[r].append(rng.choice(CSV_CELLS))
        elif action == "drop row":
            del rows[r]
            rows = rows or [[]]
        elif action == "repeat row":
            rows[r:r] = [rows[r]] * rng.choice((1, 50))
        elif action == "header":
            rows[0] = [rng.choice(("well", "Well", "", "well", "control", "conc")) for _ in rows[0]]
        said.append(action)
    out = io.StringIO()
    csv.writer(out, delimiter=rng.choice((",", ";", "\t", dialect.delimiter))).writerows(rows)
    return out.getvalue().encode(), "; ".join(said)


def png_chunk_mutation(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    """Change one chunk (IHDR most often) and give it a correct CRC, so the decoder looks further in."""
    chunks, at = [], 8
    while at + 12 <= len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        chunks.append([data[at + 4 : at + 8], data[at + 8 : at + 8 + length]])
        at += 12 + length
    index = 0 if rng.random() < 0.5 else rng.randrange(len(chunks))
    kind, body = chunks[index]
    action = rng.choice(("bytes", "int", "duplicate", "delete", "dimensions"))
    if action == "bytes" and body:
        body, _ = mutate_bytes(rng, body)
    elif action == "int" and len(body) >= 4:
        at = rng.randrange(len(body) - 3)
        body = body[:at] + struct.pack(">I", rng.choice(INTERESTING_INTS)) + body[at + 4 :]
    elif action == "duplicate":
        chunks.insert(index, [kind, body])
    elif action == "delete":
        del chunks[index]
    elif kind == b"IHDR":
        body = struct.pack(">II", rng.choice(INTERESTING_INTS), rng.choice(INTERESTING_INTS)) + body[8:]
    if index < len(chunks) and action != "delete":
        chunks[index] = [kind, body]
    out = bytearray(data[:8])
    for each, content in chunks:
        out += (
            struct.pack(">I", len(content)) + each + content + struct.pack(">I", zlib.crc32(each + content))
        )
    return bytes(out), f"png {kind.decode('latin-1')} {action}"


DICOM_VALUES: dict[str, tuple[Any, ...]] = {
    "Rows": (0, 1, 3, 65535),
    "Columns": (0, 1, 3, 65535),
    "BitsAllocated": (0, 1, 7, 12, 24, 64),
    "BitsStored": (0, 1, 17, 64),
    "HighBit": (0, 255),
    "SamplesPerPixel": (0, 2, 3, 4, 255),
    "PixelRepresentation": (0, 1, 2),
    "PlanarConfiguration": (0, 1, 2),
    "NumberOfFrames": ("0", "-1", "2", "1000000", "abc"),
    "PhotometricInterpretation": ("", "RGB", "YBR_FULL_422", "PALETTE COLOR", "MONOCHROME1", "HSV"),
    "PixelSpacing": (["0", "0"], ["1"], ["nan", "inf"], ["-1", "1e308"], ["a", "b"]),
    "ImagePositionPatient": (["0"], ["nan", "0", "0"], ["1e308", "-1e308", "0"], ["a", "b", "c"]),
    "ImageOrientationPatient": (["1", "0", "0"], ["0"] * 6, ["nan"] * 6, ["1", "0", "0", "0", "1", "0", "1"]),
    "RescaleSlope": ("0", "-1", "1e308", "nan", "inf", "x"),
    "RescaleIntercept": ("1e308", "-1e308", "nan", "x"),
    "SliceThickness": ("0", "-1", "nan", "x"),
    "SpacingBetweenSlices": ("0", "-5", "inf"),
    "InstanceNumber": ("-1", "99999999999999", "x"),
    "FrameTime": ("0", "-1", "nan", "x"),
    "SOPClassUID": ("1.2.840.10008.5.1.4.1.1.77.1.6", "", "1.2.3"),
    "TotalPixelMatrixRows": (0, 1, 65535, 4294967295),
    "TotalPixelMatrixColumns": (0, 1, 65535, 4294967295),
    "GridFrameOffsetVector": (["0"], ["0", "0"], ["nan"] * 15),
}
TRANSFER_SYNTAXES = (
    "1.2.840.10008.1.2",
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2.2",
    "1.2.840.10008.1.2.5",
    "1.2.840.10008.1.2.4.50",
    "1.2.840.10008.1.2.4.90",
    "1.2.840.10008.1.2.1.99",
    "1.2.3.4",
)


def dicom_mutation(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    """Header values a damaged or hostile instance carries, written back with pydicom."""
    dataset = pydicom.dcmread(io.BytesIO(data), force=True)
    said = []
    for _ in range(rng.choice((1, 1, 2, 3))):
        action = rng.random()
        if action < 0.65:
            keyword = rng.choice(sorted(DICOM_VALUES))
            value = rng.choice(DICOM_VALUES[keyword])
            try:
                setattr(dataset, keyword, value)
            except (ValueError, TypeError, OverflowError):
                continue
            said.append(f"{keyword}={value!r}")
        elif action < 0.75 and "PixelData" in dataset:
            pixels = dataset.PixelData
            cut = rng.choice((0, 1, len(pixels) // 2, len(pixels) - 1))
            dataset.PixelData = pixels[:cut]
            said.append(f"PixelData cut to {cut}")
        elif action < 0.85:
            keyword = rng.choice(("PixelData", "Rows", "BitsAllocated", "SharedFunctionalGroupsSequence"))
            if keyword in dataset:
                del dataset[keyword]
            said.append(f"delete {keyword}")
        else:
            syntax = rng.choice(TRANSFER_SYNTAXES)
            dataset.file_meta.TransferSyntaxUID = syntax
            said.append(f"TransferSyntaxUID={syntax}")
    out = io.BytesIO()
    try:
        dataset.save_as(out, enforce_file_format=False)
    except Exception:  # noqa: BLE001 - pydicom will not write this combination; fall back to bytes
        return mutate_bytes(rng, data)
    return out.getvalue(), "; ".join(said) or "unchanged"


def xlsx_mutation(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    """The workbook is a zip: change the worksheet's or shared strings' XML, then zip it up again."""
    with zipfile.ZipFile(io.BytesIO(data)) as workbook:
        members = {name: workbook.read(name) for name in workbook.namelist()}
    name = rng.choice([n for n in members if n.startswith(("xl/worksheets/", "xl/sharedStrings"))])
    if rng.random() < 0.6:
        members[name], what = xml_mutation(rng, members[name])
    else:
        members[name], what = mutate_bytes(rng, members[name])
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as workbook:
        for member, body in members.items():
            workbook.writestr(member, body)
    return out.getvalue(), f"{name}: {what}"


def ome_xml_mutation(pixels: np.ndarray) -> Mutation:
    """An OME-TIFF whose OME-XML (ImageDescription) is mutated as XML; tifffile builds series from it."""

    def mutate(rng: random.Random, data: bytes) -> tuple[bytes, str]:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            xml = tif.ome_metadata or ""
        mutated, what = xml_mutation(rng, xml.encode())
        out = io.BytesIO()
        tifffile.imwrite(out, pixels, description=mutated.decode(), metadata=None, photometric="minisblack")
        return out.getvalue(), f"OME-XML: {what}"

    return mutate


def mixed(structured: Mutation, share: float = 0.7) -> Mutation:
    """Mostly ``structured`` mutations, the rest byte-level."""

    def mutate(rng: random.Random, data: bytes) -> tuple[bytes, str]:
        return structured(rng, data) if rng.random() < share else mutate_bytes(rng, data)

    return mutate


# -- seeds: real inputs, and which of their files each case mutates -------------------------------------


@dataclass(frozen=True)
class Seed:
    root: Path  # what the reader is given: a file or a folder
    member: Path  # the file the case mutates (the root itself for a single file)
    mutate: Mutation
    original: bytes


def seed(root: Path, member: Path | None = None, mutate: Mutation = mutate_bytes) -> Seed:
    member = member or root
    return Seed(root, member, mutate, member.read_bytes())


def tiff_seeds(folder: Path) -> list[Seed]:
    plain = folder / "plain.tif"
    tifffile.imwrite(plain, samples.ramp((40, 48)))
    rgb = folder / "rgb-lzw.tif"
    tifffile.imwrite(
        rgb, samples.ramp((24, 40, 3), "uint8"), photometric="rgb", compression="lzw", rowsperstrip=8
    )
    stack = folder / "stack-zlib.tif"
    tifffile.imwrite(stack, samples.ramp((3, 20, 24)), compression="zlib", photometric="minisblack")
    ome = samples.ome_tiff(folder / "cells.ome.tif", samples.ramp((2, 3, 16, 16)), PhysicalSizeX=0.5)
    xml_source = samples.ramp((2, 16, 16))
    described = samples.ome_tiff(folder / "described.ome.tif", xml_source, axes="CYX", PhysicalSizeX=0.5)
    return [
        seed(plain),
        seed(rgb),
        seed(stack),
        seed(ome),
        seed(samples.imagej_hyperstack(folder / "hyper.tif", samples.ramp((2, 2, 2, 12, 16)))),
        seed(samples.pyramidal_ome_tiff(folder / "pyramid.ome.tif", samples.ramp((160, 160)))),
        seed(
            samples.multi_series_ome_tiff(
                folder / "series.ome.tif", samples.ramp((8, 8)), samples.ramp((2, 8, 8))
            )
        ),
        seed(described, mutate=ome_xml_mutation(xml_source)),
    ]


def raster_seeds(folder: Path) -> list[Seed]:
    found = [
        samples.png(folder / "grey.png", samples.ramp((24, 32), "uint8")),
        samples.png(folder / "rgb.png", samples.ramp((16, 20, 3), "uint8")),
        samples.png(folder / "rgba.png", samples.ramp((16, 20, 4), "uint8")),
        samples.png(folder / "deep.png", samples.ramp((16, 20), "uint16")),
    ]
    palette = Image.fromarray(samples.ramp((16, 20, 3), "uint8")).convert("P")
    palette.info["transparency"] = 0
    palette.save(folder / "palette.png", transparency=0)
    Image.fromarray(samples.ramp((24, 32), "uint8")).save(folder / "grey.jpg", quality=90)
    Image.fromarray(samples.ramp((24, 32, 3), "uint8")).save(folder / "rgb.jpg", quality=90, progressive=True)
    pngs = [*found, folder / "palette.png"]
    return [seed(p, mutate=mixed(png_chunk_mutation, 0.5)) for p in pngs] + [
        seed(folder / "grey.jpg"),
        seed(folder / "rgb.jpg"),
    ]


DICOM_TEST_FILES = (
    "MR_small_RLE.dcm",
    "SC_rgb_small_odd_jpeg.dcm",
    "SC_rgb_small_odd_big_endian.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "MR_small_jp2klossless.dcm",
    "emri_small.dcm",
    "SC_rgb_rle_2frame.dcm",
    "rtdose_1frame.dcm",
    "JPEGLSNearLossless_08.dcm",
)


def dicom_seeds(folder: Path) -> list[Seed]:
    files = [samples.dicom_ct(folder / "ct.dcm")]
    for name in DICOM_TEST_FILES:
        shutil.copy(get_testdata_file(name), folder / name)
        files.append(folder / name)
    return [seed(path, mutate=mixed(dicom_mutation, 0.6)) for path in files]


def _zarr_members(root: Path, chunks: int = 2) -> list[Seed]:
    """Each metadata document of an OME-Zarr folder (JSON mutations), and a few chunks (byte mutations)."""
    documents = sorted(p for p in root.rglob("*") if p.name in ("zarr.json", ".zattrs", ".zarray", ".zgroup"))
    data = sorted(p for p in root.rglob("*") if p.is_file() and p not in documents)[:chunks]
    return [seed(root, p, mixed(json_mutation, 0.85)) for p in documents] + [seed(root, p) for p in data]


def omezarr_seeds(folder: Path) -> list[Seed]:
    v04 = samples.ome_zarr_v04(folder / "v04.ome.zarr", samples.ramp((3, 24, 24)))
    v05 = samples.ome_zarr_v05(folder / "v05.ome.zarr", samples.ramp((2, 24, 24)))
    b2r = samples.bioformats2raw(folder / "b2r.zarr", [samples.ramp((16, 16)), samples.ramp((8, 8))])
    return _zarr_members(v04) + _zarr_members(v05) + _zarr_members(b2r)


def multiscale_seeds(folder: Path) -> list[Seed]:
    v04 = samples.ome_zarr_v04(folder / "v04.ome.zarr", samples.ramp((2, 8, 8)))
    v05 = samples.ome_zarr_v05(folder / "v05.ome.zarr", samples.ramp((1, 8, 8)))
    return [seed(v04 / ".zattrs", mutate=json_mutation), seed(v05 / "zarr.json", mutate=json_mutation)]


def zarr_plate_seeds(folder: Path) -> list[Seed]:
    v05 = plate_samples.ome_zarr_plate(folder / "plate.ome.zarr", [(0, 0), (1, 2)], fields=1)
    v04 = plate_samples.ome_zarr_plate_v04(folder / "plate04.ome.zarr", [(0, 1)], fields=2)
    return _zarr_members(v05, chunks=1) + _zarr_members(v04, chunks=1)


def plate_seeds(folder: Path) -> list[Seed]:
    harmony = plate_samples.harmony(folder / "harmony", [(0, 0), (1, 1)], fields=1, shape=(12, 16))
    index = harmony / "Images" / "Index.idx.xml"
    first_image = sorted((harmony / "Images").glob("*.tiff"))[0]
    express = plate_samples.imagexpress(folder / "express", [(0, 0), (1, 2)], fields=1, shape=(12, 16))
    express_image = sorted(express.glob("*_w1.tif"))[0]
    return [
        seed(harmony, index, mixed(xml_mutation, 0.8)),
        seed(harmony, first_image),
        seed(express, express_image),
    ]


PLATEMAP = [
    ["Well", "Compound", "Concentration", "Unit", "Control", "Replicate", "Notes"],
    ["A01", "DMSO", "0.1", "%", "neutral", "1", "edge"],
    ["A02", "staurosporine", "1 uM", "", "positive", "1", ""],
    ["B03", "compound-17", "1e-6", "M", "", "2", "batch 4"],
    ["H12", "", "", "", "negative", "", ""],
]


def platemap_seeds(folder: Path) -> list[Seed]:
    found = []
    for name, delimiter in (("map.csv", ","), ("map-semicolon.csv", ";"), ("map.tsv", "\t")):
        with (folder / name).open("w", newline="") as f:
            csv.writer(f, delimiter=delimiter).writerows(PLATEMAP)
        found.append(seed(folder / name, mutate=mixed(csv_mutation, 0.7)))
    from openpyxl import Workbook

    workbook = Workbook()
    for row in PLATEMAP:
        workbook.active.append(row)
    workbook.save(folder / "map.xlsx")
    return [*found, seed(folder / "map.xlsx", mutate=mixed(xlsx_mutation, 0.8))]


STUDY = {
    "study": {
        "title": "HeLa mitosis",
        "description": "Live imaging of HeLa cells through mitosis.",
        "license": "CC-BY-4.0",
        "keywords": ["mitosis", "HeLa"],
        "authors": [{"name": "Ada Lovelace", "orcid": "0000-0002-1825-0097", "affiliation": "EMBL"}],
    },
    "study_components": [
        {
            "name": "timelapse",
            "description": "Confocal time-lapse",
            "imaging_methods": ["confocal microscopy"],
            "biosample": "sample1",
            "specimen": "specimen1",
            "acquisition": "acquisition1",
            "files": ["cells.ome.tif"],
        }
    ],
    "biosamples": [{"id": "sample1", "organism": "Homo sapiens", "biological_entity": "HeLa cell"}],
    "specimens": [{"id": "specimen1", "preparation_method": "fixed", "channels": [{"name": "DAPI"}]}],
    "image_acquisitions": [{"id": "acquisition1", "instrument": "Zeiss LSM 880", "parameters": {"z": 3}}],
}


def study_seeds(folder: Path) -> list[Seed]:
    (folder / "study.yaml").write_bytes(dump_yaml(STUDY))
    (folder / "study.json").write_bytes(dump_json(STUDY))
    return [
        seed(folder / "study.yaml", mutate=mixed(yaml_mutation, 0.85)),
        seed(folder / "study.json", mutate=mixed(json_mutation, 0.85)),
    ]


@dataclass(frozen=True)
class Target:
    name: str
    seeds: Callable[[Path], list[Seed]]
    exercise: Callable[[Path], None]


TARGETS = {
    target.name: target
    for target in (
        Target("tiff", tiff_seeds, read_image_file),
        Target("raster", raster_seeds, read_image_file),
        Target("dicom", dicom_seeds, read_image_file),
        Target("omezarr", omezarr_seeds, read_image_file),
        Target("multiscale", multiscale_seeds, read_multiscale),
        Target("zarr-plate", zarr_plate_seeds, read_zarr_plate_folder),
        Target("plate-folder", plate_seeds, read_plate),
        Target("platemap", platemap_seeds, read_platemap_file),
        Target("rembi", study_seeds, read_study),
    )
}


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], list[Seed]]:
    """Each target's seeds, built once per module on first use, every seed checked to read cleanly."""
    built: dict[str, list[Seed]] = {}

    def of(name: str) -> list[Seed]:
        if name not in built:
            target = TARGETS[name]
            built[name] = target.seeds(tmp_path_factory.mktemp(name))
            for each in built[name]:
                target.exercise(each.root)  # an unmutated seed must read, or the cases prove nothing
        return built[name]

    return of


# -- the cases ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    target: str
    number: int
    seed: Seed
    data: bytes
    mutation: str

    def __str__(self) -> str:
        replay = f"FUZZ_REPLAY={self.target}:{self.number} pytest tests/test_fuzz.py -k replay"
        where = self.seed.member.relative_to(self.seed.root.parent)
        return f"{self.target} case {self.number} (seed {SEED}, {where}: {self.mutation}); replay: {replay}"


def draw(target: str, number: int, seeds: list[Seed]) -> Case:
    rng = random.Random(f"{SEED}:{target}:{number}")
    chosen = rng.choice(seeds)
    try:
        data, mutation = chosen.mutate(rng, chosen.original)
    except (ValueError, KeyError, IndexError, TypeError, ET.ParseError, csv.Error, yaml.YAMLError):
        data, mutation = mutate_bytes(rng, chosen.original)  # a structured mutation that does not apply
    return Case(target, number, chosen, data, mutation)


@contextmanager
def written(case: Case) -> Iterator[Path]:
    """The case's bytes in place of its seed's member, for as long as the case runs."""
    case.seed.member.write_bytes(case.data)
    try:
        yield case.seed.root
    finally:
        case.seed.member.write_bytes(case.seed.original)


def run_cases(target: str, numbers: range, seeds: list[Seed], keep: Path) -> tuple[list[str], float]:
    """Every case of ``numbers``; the failures (each with what replays it, its input kept in ``keep``)."""
    failures: list[str] = []
    started = time.monotonic()
    for number in numbers:
        case = draw(target, number, seeds)
        with written(case) as root:
            error = outcome(TARGETS[target].exercise, root)
        if error is not None:
            kept = keep / f"{target}-{number}-{case.seed.member.name}"
            kept.write_bytes(case.data)
            failures.append(f"{case}\n    {type(error).__name__}: {str(error)[:300]}\n    input: {kept}")
    return failures, time.monotonic() - started


def check_cases(target: str, count: int, seeds: Callable[[str], list[Seed]], tmp_path: Path) -> None:
    failures, seconds = run_cases(target, range(count), seeds(target), tmp_path)
    print(f"{target}: {count} cases in {seconds:.1f} s, {len(failures)} failed")
    shown = "\n".join(failures[:15])
    assert not failures, f"{len(failures)} of {count} {target} cases failed:\n{shown}"


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_mutated_inputs_read_or_fail_with_a_fairimage_error(
    target: str, seeds: Callable[[str], list[Seed]], tmp_path: Path
) -> None:
    check_cases(target, DEFAULT_CASES, seeds, tmp_path)


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_many_mutated_inputs_read_or_fail_with_a_fairimage_error(
    target: str, seeds: Callable[[str], list[Seed]], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if "slow" not in (request.config.option.markexpr or ""):
        pytest.skip("10 000 cases per reader: run with -m slow")
    check_cases(target, SLOW_CASES, seeds, tmp_path)


def test_replay(seeds: Callable[[str], list[Seed]]) -> None:
    """FUZZ_REPLAY=target:number runs one case, with the reader's own traceback if it fails."""
    wanted = os.environ.get("FUZZ_REPLAY")
    if not wanted:
        pytest.skip("set FUZZ_REPLAY=target:number to replay a case")
    target, number = wanted.split(":")
    case = draw(target, int(number), seeds(target))
    print(case)
    with written(case) as root:
        try:
            TARGETS[target].exercise(root)
        except FairimageError as error:
            print(f"refused: {error}")


# -- declared sizes far beyond the data: refused before anything is allocated --------------------------


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_declaring(folder: Path, width: int, height: int) -> Path:
    """A grey PNG whose header says width x height, with a few bytes of compressed rows."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
    data += _png_chunk(b"IDAT", zlib.compress(b"\x00" * 4096)) + _png_chunk(b"IEND", b"")
    path = folder / f"bomb-{width}x{height}.png"
    path.write_bytes(data)
    return path


def jpeg_declaring(folder: Path, width: int, height: int) -> Path:
    """An 8 x 8 grey JPEG whose frame header (SOF0) says width x height."""
    out = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(out, "JPEG")
    data = out.getvalue()
    at = data.index(b"\xff\xc0") + 5
    path = folder / f"bomb-{width}x{height}.jpg"
    path.write_bytes(data[:at] + struct.pack(">HH", height, width) + data[at + 4 :])
    return path


def tiff_declaring(folder: Path, width: int, height: int, compression: int, strip: bytes) -> Path:
    """A one-strip 8-bit grey TIFF whose tags say width x height, with ``strip`` as its only data."""
    tags = [(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, compression), (262, 3, 1)]
    tags += [(273, 4, 8 + 2 + 12 * 9 + 4), (277, 3, 1), (278, 4, height), (279, 4, len(strip))]
    ifd = struct.pack("<H", len(tags))
    for tag, kind, value in tags:
        ifd += struct.pack("<HHI", tag, kind, 1) + struct.pack(
            "<HH" if kind == 3 else "<I", *((value, 0) if kind == 3 else (value,))
        )
    path = folder / f"bomb-{width}x{height}-{compression}.tif"
    path.write_bytes(b"II*\x00" + struct.pack("<I", 8) + ifd + b"\x00" * 4 + strip)
    return path


def dicom_declaring(folder: Path, source: str, rows: int, columns: int) -> Path:
    """A DICOM file (``source``: pydicom's test file, or CT for our CT) whose Rows and Columns are changed."""
    original = samples.dicom_ct(folder / "ct.dcm") if source == "CT" else get_testdata_file(source)
    dataset = pydicom.dcmread(original)
    dataset.Rows, dataset.Columns = rows, columns
    path = folder / f"bomb-{rows}x{columns}-{Path(str(original)).name}"
    dataset.save_as(path)
    return path


def zarr_declaring(folder: Path, shape: list[int], chunks: list[int], axes: str = "cyx") -> Path:
    """An OME-Zarr 0.5 image whose level 0 says ``shape`` and ``chunks`` (its one chunk of 1 x 8 x 8)."""
    image = samples.ome_zarr_v05(folder / "bomb.ome.zarr", samples.ramp((1, 8, 8)))
    group = json.loads((image / "zarr.json").read_text())
    multiscale = group["attributes"]["ome"]["multiscales"][0]
    multiscale["axes"] = [axis for axis in multiscale["axes"] if axis["name"] in axes]
    for dataset in multiscale["datasets"]:
        dataset["coordinateTransformations"] = [{"type": "scale", "scale": [1.0] * len(shape)}]
    (image / "zarr.json").write_text(json.dumps(group))
    level = json.loads((image / "s0" / "zarr.json").read_text())
    level["shape"], level["chunk_grid"]["configuration"]["chunk_shape"] = shape, chunks
    level["dimension_names"] = list(axes)
    (image / "s0" / "zarr.json").write_text(json.dumps(level))
    return image


BOMBS: dict[str, Callable[[Path], Path]] = {
    "png 100000 x 100000": lambda folder: png_declaring(folder, 100_000, 100_000),
    "png 60000 x 60000 (under Pillow's guard)": lambda folder: png_declaring(folder, 60_000, 60_000),
    "jpeg 65500 x 65500": lambda folder: jpeg_declaring(folder, 65_500, 65_500),
    "jpeg 40000 x 40000": lambda folder: jpeg_declaring(folder, 40_000, 40_000),
    "tiff 100000 x 100000 uncompressed": lambda folder: tiff_declaring(
        folder, 100_000, 100_000, 1, bytes(64)
    ),
    "tiff 50000 x 50000 in one deflate strip": lambda folder: tiff_declaring(
        folder, 50_000, 50_000, 8, zlib.compress(bytes(1000))
    ),
    "tiff 2000000 wide": lambda folder: tiff_declaring(folder, 2_000_000, 8, 8, zlib.compress(bytes(100))),
    "dicom 65535 x 65535": lambda folder: dicom_declaring(folder, "CT", 65_535, 65_535),
    "dicom 40000 x 40000 uncompressed": lambda folder: dicom_declaring(folder, "CT", 40_000, 40_000),
    "dicom 40000 x 40000 RLE": lambda folder: dicom_declaring(folder, "MR_small_RLE.dcm", 40_000, 40_000),
    "dicom 40000 x 40000 JPEG 2000": lambda folder: dicom_declaring(
        folder, "MR_small_jp2klossless.dcm", 40_000, 40_000
    ),
    "ome-zarr shape 10**12 x 10**12": lambda folder: zarr_declaring(
        folder, [1, 10**12, 10**12], [1, 256, 256]
    ),
    "ome-zarr one chunk of 100000 x 100000": lambda folder: zarr_declaring(
        folder, [1, 100_000, 100_000], [1, 100_000, 100_000]
    ),
    "ome-zarr shape [10**12] along x alone": lambda folder: zarr_declaring(folder, [10**12], [10**12], "x"),
}


@pytest.mark.parametrize("bomb", sorted(BOMBS))
def test_declared_huge_sizes_are_refused_before_allocating(bomb: str, tmp_path: Path) -> None:
    path = BOMBS[bomb](tmp_path)
    tracemalloc.start()
    try:
        with (
            peak_memory() as added,
            address_space_cap(CASE_HEADROOM),
            time_bound(CASE_SECONDS),
            pytest.raises(FairimageError) as refused,
        ):
            read_image_file(path)
        _, traced = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert path.name in str(refused.value) and "\n" not in str(refused.value)
    assert added[0] < BOMB_PEAK, f"{bomb}: resident memory grew by {added[0] >> 20} MiB"
    assert traced < BOMB_PEAK, f"{bomb}: Python allocated {traced >> 20} MiB"


# -- path tricks: metadata that names files outside the input, and links out of it ---------------------

ESCAPES = (
    "../outside.ome.zarr/s0",
    "../../etc",
    "/etc/passwd",
    "s0/../../outside.ome.zarr/s0",
    "..\\s0",
    "",
    ".",
)


@pytest.fixture(scope="module")
def two_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("two-images")
    samples.ome_zarr_v05(folder / "image.ome.zarr", samples.ramp((1, 8, 8)))
    samples.ome_zarr_v05(folder / "outside.ome.zarr", samples.ramp((1, 8, 8), seed=7))
    return folder


@pytest.fixture
def image_and_outside(two_images: Path, tmp_path: Path) -> tuple[Path, Path]:
    """An OME-Zarr image, and beside it another one whose pixels a crafted image would like to read."""
    shutil.copytree(two_images, tmp_path / "in")
    return tmp_path / "in" / "image.ome.zarr", tmp_path / "in" / "outside.ome.zarr"


def _set_dataset_path(image: Path, path: str) -> None:
    group = json.loads((image / "zarr.json").read_text())
    group["attributes"]["ome"]["multiscales"][0]["datasets"][0]["path"] = path
    (image / "zarr.json").write_text(json.dumps(group))


@pytest.mark.parametrize("escape", ESCAPES)
def test_a_dataset_path_out_of_the_image_is_refused(
    escape: str, image_and_outside: tuple[Path, Path]
) -> None:
    image, _ = image_and_outside
    _set_dataset_path(image, escape)
    with pytest.raises(FairimageError, match="not a path inside the image"):
        read_image_file(image)
    attrs = json.loads((image / "zarr.json").read_text())["attributes"]
    with pytest.raises(FairimageError, match="not a path inside the image"):
        parse_multiscale(attrs, image.name)


@pytest.mark.parametrize("escape", ["../../etc", "/etc/passwd", "A/../../x"])
def test_a_well_or_field_path_out_of_the_plate_is_refused(escape: str, tmp_path: Path) -> None:
    plate = plate_samples.ome_zarr_plate(tmp_path / "plate.ome.zarr", [(0, 0)], fields=1)
    group = json.loads((plate / "zarr.json").read_text())
    group["attributes"]["ome"]["plate"]["wells"][0]["path"] = escape
    (plate / "zarr.json").write_text(json.dumps(group))
    for read in (read_image_file, read_zarr_plate_folder):
        with pytest.raises(FairimageError, match="not a path inside the image"):
            read(plate)


def test_a_bioformats2raw_series_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    folder = samples.bioformats2raw(tmp_path / "b2r.zarr", [samples.ramp((8, 8))])
    zarr.open_group(str(folder / "OME"), mode="a").attrs["series"] = ["../../etc"]
    with pytest.raises(FairimageError, match="not a path inside the image"):
        read_image_file(folder)


@pytest.mark.parametrize("what", ["chunk", "level"])
def test_a_symlink_out_of_an_ome_zarr_folder_is_not_followed(
    what: str, image_and_outside: tuple[Path, Path]
) -> None:
    image, outside = image_and_outside
    inner = Path("s0/c/0/0/0") if what == "chunk" else Path("s0")
    target = image / inner
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    target.symlink_to(outside / inner)
    with pytest.raises(FairimageError, match="symbolic link out of the OME-Zarr folder") as refused:
        read_image_file(image)
    assert str(target) in str(refused.value)


def test_a_symlink_within_an_ome_zarr_folder_is_read(image_and_outside: tuple[Path, Path]) -> None:
    image, _ = image_and_outside
    shutil.copytree(image / "s0", image / "copy")
    shutil.rmtree(image / "s0")
    (image / "s0").symlink_to(image / "copy")
    with open_file(image) as opened:
        assert opened.images[0].read((slice(None),) * 3).shape == (1, 8, 8)


@pytest.mark.parametrize("url", ["../../secret.tiff", "/etc/passwd", "sub/../../secret.tiff", "link.tiff"])
def test_a_harmony_image_url_out_of_the_index_folder_is_refused(url: str, tmp_path: Path) -> None:
    folder = plate_samples.harmony(tmp_path / "harmony", [(0, 0)], fields=1, shape=(12, 16))
    secret = (
        tifffile.imwrite(tmp_path / "secret.tiff", np.zeros((12, 16), np.uint16)) or tmp_path / "secret.tiff"
    )
    (folder / "Images" / "link.tiff").symlink_to(secret)
    index = folder / "Images" / "Index.idx.xml"
    first = sorted((folder / "Images").glob("r*.tiff"))[0].name
    index.write_text(index.read_text().replace(f"<URL>{first}</URL>", f"<URL>{url}</URL>", 1))
    with pytest.raises(FairimageError, match="not a file in the index's folder") as refused:
        read_plate(folder)
    assert "Index.idx.xml" in str(refused.value)


def test_a_dicom_file_whose_preamble_holds_a_tiff_header_is_read_as_dicom(tmp_path: Path) -> None:
    """PS3.10 allows a 'dual personality' preamble; pydicom's CT_small.dcm starts with II*."""
    path = samples.dicom_ct(tmp_path / "ct.dcm")
    assert path.read_bytes()[:4] == b"II*\x00"
    with open_file(path) as opened:
        assert opened.format == "dicom" and opened.images[0].metadata.shape == (128, 128)
