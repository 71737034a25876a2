"""Dataset rules: what a study's images should have in common and do not. Each rule returns findings, one
line each, naming the well, image or metadata field and saying what to check."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from fairimage.model.plates.layout import well_name
from fairimage.model.qc.plate import Well
from fairimage.model.qc.thresholds import QcThresholds

Rule = Literal[
    "missing_well",
    "missing_field",
    "missing_channel",
    "dimensions",
    "pixel_size",
    "duplicate",
    "unresolved_term",
]


@dataclass(frozen=True)
class Finding:
    rule: Rule
    subject: str  # the well, field, image or metadata path the finding is about
    message: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.message}"


@dataclass(frozen=True)
class ImageGeometry:
    """What a study's images should share: the array shape and the physical size of a pixel per axis
    (in the order of the shape's axes that have one; None when the image records none)."""

    image: str  # its id or name
    shape: tuple[int, ...]
    pixel_size: tuple[float, ...] | None = None


def missing_images(
    wells: Iterable[Well], fields: int, channels: Sequence[str], present: Iterable[tuple[Well, int, str]]
) -> list[Finding]:
    """Wells, fields (0-based) and channels expected and not among ``present`` (well, field, channel)
    images; a missing well or field is one finding, not one per channel."""
    imaged: dict[Well, set[tuple[int, str]]] = {}
    for well, field, channel in present:
        imaged.setdefault(well, set()).add((field, channel))
    expected = {(field, channel) for field in range(fields) for channel in channels}
    findings = []
    for well in sorted(set(wells)):
        findings.extend(_missing_in_well(well, fields, channels, expected - imaged.get(well, set())))
    return findings


def inconsistent_geometry(
    images: Sequence[ImageGeometry], thresholds: QcThresholds | None = None
) -> list[Finding]:
    """Images whose shape differs from the study's most common one, or whose pixel size differs from the
    study's median by more than the tolerance (or is not recorded where others are)."""
    tolerance = (thresholds or QcThresholds()).pixel_size_tolerance
    return _odd_shapes(images) + _odd_pixel_sizes(images, tolerance)


def duplicate_images(hashes: Mapping[str, str]) -> list[Finding]:
    """Images with the same content hash (image -> hash), one finding per set of copies."""
    by_hash: dict[str, list[str]] = {}
    for image, digest in hashes.items():
        by_hash.setdefault(digest, []).append(image)
    return [
        Finding(
            "duplicate",
            copies[0],
            f"same pixels as {', '.join(copies[1:])} (content hash {digest[:12]}); keep one or check the "
            "acquisition did not save a field twice",
        )
        for digest, copies in by_hash.items()
        if len(copies) > 1
    ]


def unresolved_terms(terms: Mapping[str, Iterable[str]], resolve: Callable[[str], object]) -> list[Finding]:
    """Ontology terms (metadata path -> term ids) that ``resolve`` does not know: it returns the term,
    or None (or False) for an id it cannot resolve."""
    return [
        Finding(
            "unresolved_term",
            path,
            f"{term} does not resolve in the known ontologies; check its prefix and number, or pick a term",
        )
        for path, ids in terms.items()
        for term in ids
        if not resolve(term)
    ]


def _missing_in_well(
    well: Well, fields: int, channels: Sequence[str], lacking: set[tuple[int, str]]
) -> list[Finding]:
    name = well_name(*well)
    if len(lacking) == fields * len(channels):
        return [
            Finding("missing_well", name, "no images; the well was not imaged or its files were not found")
        ]
    findings = []
    for field in range(fields):
        absent = [channel for channel in channels if (field, channel) in lacking]
        subject = f"{name} field {field + 1}"
        if len(absent) == len(channels):
            findings.append(Finding("missing_field", subject, "no images of this field"))
        elif absent:
            findings.append(Finding("missing_channel", subject, f"channel(s) {', '.join(absent)} missing"))
    return findings


def _odd_shapes(images: Sequence[ImageGeometry]) -> list[Finding]:
    if not images:
        return []
    shapes = Counter(image.shape for image in images)
    usual, count = shapes.most_common(1)[0]
    return [
        Finding(
            "dimensions",
            image.image,
            f"shape {_dims(image.shape)} differs from {_dims(usual)}, the shape of {count} of the study's "
            f"{len(images)} images",
        )
        for image in images
        if image.shape != usual
    ]


def _odd_pixel_sizes(images: Sequence[ImageGeometry], tolerance: float) -> list[Finding]:
    known = [image for image in images if image.pixel_size is not None]
    if not known:
        return []
    axes = Counter(len(image.pixel_size or ()) for image in known).most_common(1)[0][0]
    reference = np.median(
        [image.pixel_size for image in known if len(image.pixel_size or ()) == axes], axis=0
    )
    findings = []
    for image in images:
        size = image.pixel_size
        if size is None:
            findings.append(
                Finding("pixel_size", image.image, "no pixel size recorded; other images have one")
            )
        elif len(size) != axes or np.any(np.abs(np.subtract(size, reference)) > tolerance * reference):
            findings.append(
                Finding(
                    "pixel_size",
                    image.image,
                    f"pixel size {_dims(size)} differs from the study's {_dims(tuple(reference.tolist()))}; "
                    "check the objective, binning or the metadata",
                )
            )
    return findings


def _dims(values: tuple[float, ...]) -> str:
    return " x ".join(f"{value:g}" for value in values)
