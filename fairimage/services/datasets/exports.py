"""A dataset version handed to a machine-learning user: a folder with its items (``items.csv``), a
Croissant 1.1 description with the Responsible-AI fields (``croissant.json``, which mlcroissant loads
offline), and a dataset card (``README.md``, and ``card.json`` for machines) written from the catalog:
composition per split and stratum, the studies, organisms and imaging methods, consent and access
conditions, what was left out and why, licence, citation and how to load it.

The folder is written beside its final name and renamed into place, so it is whole or absent."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image as PILImage
from sqlalchemy import select

from fairimage.catalog.tables import ImageRow, LabelRow, StudyRow
from fairimage.model.curation.checks import LICENSES
from fairimage.model.errors import InvalidInputError
from fairimage.model.governance.policy import Principal
from fairimage.ngff.reader import open_level, read_region
from fairimage.services.datasets.datasets import Dataset, DatasetItem, get_dataset
from fairimage.services.discovery import images
from fairimage.services.repository import Repository
from fairimage.storage import ImagePrefix

CROISSANT = "http://mlcommons.org/croissant/1.1"
CONTEXT: dict[str, Any] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "equivalentProperty": "cr:equivalentProperty",
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}
PIXELS, LABELS = "pixels.parquet", "labels.parquet"
COLUMNS = (
    ("image_id", "sc:Text", "the image's id in the repository"),
    ("split", "sc:Text", "train, validation or test"),
    ("group", "sc:Text", "the value of the grouping key: never in two splits"),
    ("stratum", "sc:Text", "the value of the stratifying key"),
    ("study", "sc:Text", "the study the image belongs to"),
    ("label_id", "sc:Text", "the label image paired with it, if the dataset has labels"),
    ("ai_generated", "sc:Boolean", "whether a model made the image or its label (AI-generated)"),
    ("content_sha256", "sc:Text", "a hash of its full-resolution chunks: the same pixels, the same hash"),
    ("ome_zarr_url", "sc:URL", "its OME-Zarr 0.5 image, for zarr-python, ome-zarr-py, napari"),
    ("label_url", "sc:URL", "its label's OME-Zarr, if it has one"),
)


@dataclass(frozen=True)
class Exported:
    folder: Path
    files: list[str]


DOCUMENTS = {
    "croissant.json": "application/ld+json",
    "items.csv": "text/csv",
    "card.json": "application/json",
    "README.md": "text/markdown",
    "ro-crate-metadata.json": "application/ld+json",
}
ROCRATE = "https://w3id.org/ro/crate/1.3"
NGFF = "https://ngff.openmicroscopy.org/0.5/"


def export_dataset(
    repository: Repository,
    principal: Principal,
    name: str,
    version: int | None,
    folder: Path,
    base_url: str,
    pixels: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Exported:
    """Write the dataset version's folder (``folder`` must not exist yet). With ``pixels``, every plane of
    every item (and of its label) as well, in ``pixels.parquet`` and ``labels.parquet``, which the Croissant
    description names, so that mlcroissant's records give the pixels themselves; ``progress(done, of)``
    counts items."""
    if folder.exists():
        raise InvalidInputError(f"{folder}: already exists; export into a new folder")
    partial = folder.with_name(f".{folder.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        planes = _write_planes(repository, principal, name, version, partial, progress) if pixels else {}
        documents = dataset_documents(repository, principal, name, version, base_url, planes=planes)
        for file_name, body in documents.items():
            (partial / file_name).write_bytes(body)
        partial.rename(folder)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return Exported(folder, sorted([*documents, *planes]))


PLANE_COLUMNS = {
    PIXELS: (
        ("image_id", "sc:Text", "the image's id"),
        ("split", "sc:Text", "train, validation or test"),
        ("t", "sc:Integer", "the timepoint"),
        ("z", "sc:Integer", "the plane"),
        ("c", "sc:Integer", "the channel"),
        ("image", "sc:ImageObject", "the plane at full resolution, a lossless 8- or 16-bit PNG"),
    ),
    LABELS: (
        ("image_id", "sc:Text", "the image the label belongs to"),
        ("split", "sc:Text", "train, validation or test"),
        ("t", "sc:Integer", "the timepoint"),
        ("z", "sc:Integer", "the plane"),
        ("image", "sc:ImageObject", "the label ids at full resolution, a lossless 8- or 16-bit PNG"),
    ),
}


def _write_planes(
    repository: Repository,
    principal: Principal,
    name: str,
    version: int | None,
    folder: Path,
    progress: Callable[[int, int], None] | None,
) -> dict[str, str]:
    """Every plane of every item (and of its label) as PNGs in two Parquet tables, an item a row group, so
    that memory holds one image's planes at a time; their sha256 by file name."""
    dataset = get_dataset(repository, principal, name, version)
    kinds = {"sc:ImageObject": pa.binary(), "sc:Text": pa.string(), "sc:Integer": pa.int32()}
    schemas = {
        file: pa.schema([(column, kinds[kind]) for column, kind, _ in columns])
        for file, columns in PLANE_COLUMNS.items()
    }
    written: set[str] = set()
    writers = {file: pq.ParquetWriter(folder / file, schema) for file, schema in schemas.items()}
    try:
        for done, item in enumerate(dataset.items, start=1):
            image = images.get_image(repository, principal, item.image_id)
            stored = repository.image_root(image.id).zarr_store(image.levels[0].path, read_only=True)
            rows = list(_planes(open_level(stored, image.id), image.axis_names, item, channels=True))
            writers[PIXELS].write_table(pa.Table.from_pylist(rows, schemas[PIXELS]))
            written.add(PIXELS)
            if item.label_id is not None:
                with repository.reading() as session:
                    label = session.get(LabelRow, item.label_id)
                assert label is not None  # a dataset's labels are never removed
                axes = "".join(axis["name"] for axis in label.axes)
                label_root = ImagePrefix(repository.store, label.storage_key)
                stored = label_root.zarr_store(label.levels[0]["path"], read_only=True)
                rows = list(_planes(open_level(stored, label.id), axes, item, channels=False))
                writers[LABELS].write_table(pa.Table.from_pylist(rows, schemas[LABELS]))
                written.add(LABELS)
            if progress is not None:
                progress(done, len(dataset.items))
    finally:
        for writer in writers.values():
            writer.close()
    for file in set(writers) - written:
        (folder / file).unlink()
    return {file: hashlib.sha256((folder / file).read_bytes()).hexdigest() for file in sorted(written)}


def _planes(array: Any, axes: str, item: DatasetItem, channels: bool) -> Iterator[dict[str, Any]]:
    """A row per plane of ``array`` (per channel too, with ``channels``): its place and its PNG."""
    shape = dict(zip(axes, array.shape, strict=True))
    what = f"image {item.image_id}" if channels else f"the label of image {item.image_id}"
    for t in range(shape.get("t", 1)):
        for z in range(shape.get("z", 1)):
            indices = list(range(shape.get("c", 1))) if channels else [0]
            planes = read_region(array, axes, indices, z, t, (0, shape["y"]), (0, shape["x"]))
            for c, plane in zip(indices, planes, strict=True):
                row: dict[str, Any] = {"image_id": item.image_id, "split": item.split, "t": t, "z": z}
                if channels:
                    row["c"] = c
                row["image"] = _png(plane, what)
                yield row


def _png(plane: np.ndarray, what: str) -> bytes:
    """A lossless grayscale PNG of an 8- or 16-bit plane (label ids that fit 16 bits included)."""
    if plane.dtype not in (np.uint8, np.uint16):
        fits = plane.dtype.kind in "ui" and (not plane.size or (plane.min() >= 0 and plane.max() < 1 << 16))
        if not fits:
            raise InvalidInputError(
                f"{what}: its pixels are {plane.dtype}, which a PNG cannot hold without loss; export without "
                "--with-pixels and read it from its ome_zarr_url"
            )
        plane = plane.astype(np.uint16)
    buffer = io.BytesIO()
    PILImage.fromarray(plane).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def dataset_documents(
    repository: Repository,
    principal: Principal,
    name: str,
    version: int | None,
    base_url: str,
    served: bool = False,
    planes: dict[str, str] | None = None,
) -> dict[str, bytes]:
    """The files of a dataset version's export (``DOCUMENTS``), by name: what the folder holds and, with
    ``served``, what ``GET /api/datasets/NAME/VERSION/FILE`` serves (the Croissant description then names
    its items file by its URL, which a loader fetches; in a folder it is the file beside it)."""
    dataset = get_dataset(repository, principal, name, version)
    base = base_url.rstrip("/")
    with repository.reading() as session:
        studies = {study_id: session.get(StudyRow, study_id) for study_id in dataset.studies}
        label_rows = [
            row
            for row in (session.get(LabelRow, item.label_id) for item in dataset.items if item.label_id)
            if row is not None
        ]
        label_names = {row.id: row.name for row in label_rows}
        unknown = sum(row.made_by_kind == "unknown" for row in label_rows)
        facts = _facts([study for study in studies.values() if study is not None])
        ids = [item.image_id for item in dataset.items]
        image_studies = dict(
            session.execute(select(ImageRow.id, ImageRow.study_id).where(ImageRow.id.in_(ids))).all()
        )
    rows = [
        {
            "image_id": item.image_id,
            "split": item.split,
            "group": item.group,
            "stratum": item.stratum,
            "study": facts.names.get(image_studies.get(item.image_id, ""), ""),
            "label_id": item.label_id or "",
            "ai_generated": "true" if item.ai_generated else "false",
            "content_sha256": item.content_sha256 or "",
            "ome_zarr_url": f"{base}/zarr/{item.image_id}.ome.zarr",
            "label_url": f"{base}/zarr/{item.image_id}.ome.zarr/labels/{label_names[item.label_id]}"
            if item.label_id in label_names
            else "",
        }
        for item in dataset.items
    ]
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=[column for column, _, _ in COLUMNS], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    items_csv = table.getvalue().encode()
    card = dataset_card(dataset, facts, base, unknown_labels=unknown)
    items_url = f"{base}/api/datasets/{dataset.name}/{dataset.version}/items.csv" if served else "items.csv"
    sha256 = hashlib.sha256(items_csv).hexdigest()
    documents = {
        "croissant.json": _json(croissant(dataset, facts, card, (items_url, sha256), base, planes or {})),
        "items.csv": items_csv,
        "card.json": _json(card),
        "README.md": card_markdown(card).encode(),
    }
    crate = rocrate(
        dataset, card, facts, base, {**{n: len(b) for n, b in documents.items()}, **(planes or {})}
    )
    return documents | {"ro-crate-metadata.json": _json(crate)}


def rocrate(
    dataset: Dataset, card: dict[str, Any], facts: _Facts, base_url: str, files: dict[str, int | str]
) -> dict[str, Any]:
    """RO-Crate 1.3 metadata of the export: the dataset version as the root, its files, the studies it was
    drawn from (by PID) and every item's OME-Zarr image by URL, with its split."""
    license_url = LICENSES.get(facts.licenses[0]) if len(facts.licenses) == 1 else None
    licence: dict[str, Any] = (
        {"@id": license_url, "@type": "CreativeWork", "name": facts.licenses[0]}
        if license_url
        else {
            "@id": "#licence",
            "@type": "CreativeWork",
            "name": "; ".join(facts.licenses) or "Not recorded",
            "description": "Each study's own licence applies; ask the owners of the studies where none is "
            "recorded.",
        }
    )
    items = [
        {
            "@id": f"{base_url}/zarr/{item.image_id}.ome.zarr",
            "@type": "Dataset",
            "name": item.image_id,
            "description": f"{item.split} split, group {item.group}"
            + (f", stratum {item.stratum}" if item.stratum else "")
            + ("; AI-generated" if item.ai_generated else ""),
            "identifier": f"{base_url}/pid/{item.image_id}",
            "conformsTo": {"@id": NGFF},
        }
        for item in dataset.items
    ]
    studies = [
        # contextual, not a part of the crate: a study is described at its PID
        {"@id": f"{base_url}/pid/{study_id}", "@type": "CreativeWork", "name": f"Study {name}"}
        for study_id, name in facts.names.items()
    ]
    described = {
        "croissant.json": ("Croissant 1.1 description (Responsible-AI fields included)", CROISSANT),
        "items.csv": ("The items: image, split, group, stratum, label, pixel hash, URLs", None),
        "card.json": ("The dataset card, for machines", None),
        "README.md": ("The dataset card", None),
        PIXELS: ("Every plane of every image, lossless PNGs", None),
        LABELS: ("Every plane of every label, lossless PNGs", None),
    }
    file_entities = [
        {
            "@id": name,
            "@type": "File",
            "name": name,
            "description": described[name][0],
            "encodingFormat": DOCUMENTS.get(name, "application/vnd.apache.parquet"),
            **({"contentSize": str(size)} if isinstance(size, int) else {}),
            **({"conformsTo": {"@id": described[name][1]}} if described[name][1] else {}),
        }
        for name, size in files.items()
    ]
    root = {
        "@id": "./",
        "@type": "Dataset",
        "name": f"Dataset {dataset.name}, version {dataset.version}",
        "description": card["description"]
        or f"{card['items']} images for machine learning, split {card['how_split']['proportions']} by "
        f"{card['how_split']['group_by']} (no group in two splits).",
        "datePublished": (card["created_at"] or "")[:10] or None,
        "identifier": f"{base_url}/pid/{dataset.id}",
        "version": str(dataset.version),
        "license": {"@id": licence["@id"]},
        "creator": {"@id": "#maker"},
        "isBasedOn": [{"@id": study["@id"]} for study in studies],
        "hasPart": [{"@id": entity["@id"]} for entity in file_entities + items],
    }
    graph = [
        {
            "@id": "ro-crate-metadata.json",
            "@type": "CreativeWork",
            "conformsTo": {"@id": ROCRATE},
            "about": {"@id": "./"},
        },
        {key: value for key, value in root.items() if value is not None},
        licence,
        {"@id": "#maker", "@type": "Person", "name": dataset.created_by},
        *studies,
        *file_entities,
        *items,
    ]
    return {"@context": f"{ROCRATE}/context", "@graph": graph}


@dataclass(frozen=True)
class _Facts:
    """What the studies of a dataset say of themselves."""

    names: dict[str, str]  # study id -> name
    titles: list[str]
    licenses: list[str]
    organisms: list[str]
    methods: list[str]
    access: list[str]  # one line per study: its policy and consent terms


def use_terms(study: StudyRow) -> str:
    """A study's policy and the consent (DUO) terms its data may be used under: "restricted; consent
    DUO:0000007 with DUO:0000019"."""
    consent = (study.data_use or {}).get("permission")
    modifiers = ", ".join((study.data_use or {}).get("modifiers") or [])
    terms = f"; consent {consent}" + (f" with {modifiers}" if modifiers else "") if consent else ""
    return f"{study.policy}{terms}"


def _facts(studies: list[StudyRow]) -> _Facts:
    titles, licenses, organisms, methods, access = [], [], [], [], []
    for study in studies:
        rembi = study.rembi or {}
        titles.append(str((rembi.get("study") or {}).get("title") or study.name))
        if license_ := (rembi.get("study") or {}).get("license"):
            licenses.append(str(license_))
        for biosample in rembi.get("biosamples") or []:
            organism = biosample.get("organism")
            if isinstance(organism, dict):
                organisms.append(str(organism.get("label") or organism.get("id")))
            elif organism:
                organisms.append(str(organism))
        for component in rembi.get("study_components") or []:
            for method in component.get("imaging_methods") or []:
                methods.append(
                    str(method.get("label") or method.get("id")) if isinstance(method, dict) else str(method)
                )
        access.append(f"{study.name}: {use_terms(study)}")
    return _Facts(
        names={study.id: study.name for study in studies},
        titles=titles,
        licenses=sorted(set(licenses)),
        organisms=sorted(set(organisms)),
        methods=sorted(set(methods)),
        access=access,
    )


def dataset_card(dataset: Dataset, facts: _Facts, base_url: str, unknown_labels: int = 0) -> dict[str, Any]:
    """The dataset card as data: what the Markdown card and the Croissant RAI fields say."""
    parameters = dataset.parameters
    balance: dict[str, dict[str, int]] = {split: {} for split in dataset.counts}  # in split order
    for item in dataset.items:
        by_stratum = balance.setdefault(item.split, {})
        by_stratum[item.stratum or "all"] = by_stratum.get(item.stratum or "all", 0) + 1
    generated = sum(item.ai_generated for item in dataset.items)
    gaps = [f"{count} image(s) left out: {reason}" for reason, count in dataset.excluded.items()]
    strata = sorted({stratum for counts in balance.values() for stratum in counts})
    for stratum in strata:
        absent = [
            split for split, counts in balance.items() if dataset.counts[split] and stratum not in counts
        ]
        if absent and parameters.get("stratify"):
            gaps.append(
                f"{parameters['stratify']} {stratum!r} is in no {' or '.join(absent)} item: too few groups "
                "of it to split"
            )
    if unknown_labels:
        gaps.append(
            f"{unknown_labels} label(s) of unknown origin: copied from OME-Zarr inputs that do not say "
            "who or what made them (a person or a model)"
        )
    if any(item.content_sha256 is None for item in dataset.items):
        gaps.append("some images' pixels are not known here (registered, not verified): duplicates unchecked")
    notes = dataset.notes
    return {
        "name": dataset.name,
        "version": dataset.version,
        "id": dataset.id,
        "description": notes.get("description", ""),
        "intended_uses": notes.get("intended_uses", ""),
        "limitations": notes.get("limitations", ""),
        "biases": notes.get("biases", ""),
        "edited": f"{notes['edited_by']} on {notes['edited_at'][:10]}" if "edited_by" in notes else None,
        "created_by": dataset.created_by,
        "created_at": dataset.created_at.isoformat() if dataset.created_at else None,
        "studies": facts.titles,
        "organisms": facts.organisms,
        "imaging_methods": facts.methods,
        "licenses": facts.licenses,
        "access": facts.access,
        "items": len(dataset.items),
        "splits": dataset.counts,
        "balance": balance,
        "how_split": {
            "proportions": parameters.get("split"),
            "group_by": parameters.get("group_by"),
            "stratify": parameters.get("stratify"),
            "seed": parameters.get("seed"),
            "label": parameters.get("label"),
        },
        "ai_generated_items": generated,
        "known_gaps": gaps,
        "how_to_load": (
            f"fairimage dataset show {dataset.name} --version {dataset.version} --json; each item's pixels: "
            f"zarr.open_group('{base_url}/zarr/IMAGE.ome.zarr') (zarr-python), or the ome_zarr_url column "
            "of items.csv; in Python, mlcroissant.Dataset('croissant.json').records('items')"
        ),
        "citation": f"{dataset.name} version {dataset.version} ({dataset.id}), drawn from "
        + "; ".join(facts.titles),
    }


def card_markdown(card: dict[str, Any]) -> str:
    """The card a person reads: a README for the dataset's folder."""
    split = card["how_split"]
    lines = [
        f"# Dataset {card['name']}, version {card['version']}",
        "",
        f"`{card['id']}`, made by {card['created_by']} on {card['created_at'] or 'an unknown date'}"
        + (f"; its card last edited by {card['edited']}." if card["edited"] else "."),
        "",
        *([card["description"], ""] if card["description"] else []),
        "## Intended uses",
        "",
        card["intended_uses"] or "Not written yet: fairimage dataset describe NAME --intended-uses TEXT.",
        "",
        "## Composition",
        "",
        f"{card['items']} images: "
        + ", ".join(f"{name} {count}" for name, count in card["splits"].items())
        + ".",
        "",
        "| split | " + " | ".join(sorted({s for counts in card["balance"].values() for s in counts})) + " |",
    ]
    strata = sorted({s for counts in card["balance"].values() for s in counts})
    lines.append("|---" * (len(strata) + 1) + "|")
    for name, counts in card["balance"].items():
        lines.append(f"| {name} | " + " | ".join(str(counts.get(s, 0)) for s in strata) + " |")
    lines += [
        "",
        f"Split {split['proportions']} with seed {split['seed']}, grouped by {split['group_by']} (no group "
        f"is in two splits){', stratified by ' + split['stratify'] if split['stratify'] else ''}"
        f"{'; each image with its label ' + repr(split['label']) if split['label'] else ''}.",
        f"AI-generated items (a model made the image or its label): {card['ai_generated_items']}.",
        "",
        "## Sources",
        "",
        *(f"- {title}" for title in card["studies"]),
        "",
        f"Organisms: {', '.join(card['organisms']) or 'not recorded'}. "
        f"Imaging methods: {', '.join(card['imaging_methods']) or 'not recorded'}.",
        "",
        "## Access and consent",
        "",
        *(f"- {line}" for line in card["access"]),
        "",
        f"Licence: {', '.join(card['licenses']) or 'not recorded: ask the owners of the studies'}.",
        "",
        "## Known gaps and biases",
        "",
        *([card["limitations"], ""] if card["limitations"] else []),
        *([card["biases"], ""] if card["biases"] else []),
        *([f"- {gap}" for gap in card["known_gaps"]] or ["- none recorded"]),
        "",
        "## How to load it",
        "",
        card["how_to_load"],
        "",
        "## Citation",
        "",
        card["citation"],
        "",
    ]
    return "\n".join(lines)


def croissant(
    dataset: Dataset,
    facts: _Facts,
    card: dict[str, Any],
    items: tuple[str, str],
    base_url: str,
    planes: dict[str, str],
) -> dict[str, Any]:
    """Croissant 1.1 JSON-LD: the dataset, its items file and record set, the Responsible-AI fields, and
    where ``planes`` names them (file name: sha256), the pixel and label planes' files and record sets."""
    studies = f"{len(facts.titles)} stud{'y' if len(facts.titles) == 1 else 'ies'}"
    description = (
        f"{card['items']} images drawn from {studies}, "
        f"split {card['how_split']['proportions']} by {card['how_split']['group_by']}."
    )
    return {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "name": dataset.name,
        "description": f"{card['description']} {description}" if card["description"] else description,
        "conformsTo": CROISSANT,
        "citeAs": card["citation"],
        "datePublished": card["created_at"][:10] if card["created_at"] else None,
        "license": facts.licenses[0] if len(facts.licenses) == 1 else (facts.licenses or "not recorded"),
        "url": f"{base_url}/api/datasets/{dataset.name}/{dataset.version}/croissant.json",
        "version": f"{dataset.version}.0.0",
        "creator": {"@type": "sc:Person", "name": dataset.created_by},
        "rai:dataCollection": "Microscopy images acquired by "
        + (", ".join(facts.methods) or "methods not recorded")
        + "; converted to OME-Zarr 0.5 by fairimage, every object checksummed.",
        "rai:dataBiases": (f"{card['biases']} " if card["biases"] else "")
        + "Per split and stratum: "
        + "; ".join(f"{split} {counts}" for split, counts in card["balance"].items()),
        "rai:dataLimitations": "; ".join(
            [card["limitations"]] * bool(card["limitations"]) + card["known_gaps"]
        )
        or "none recorded",
        "rai:personalSensitiveInformation": "; ".join(facts.access),
        "rai:dataUseCases": card["intended_uses"]
        or "Training and evaluating image-analysis models, within each study's consent terms.",
        "rai:machineAnnotationTools": f"{card['ai_generated_items']} items are AI-generated (a model made "
        "the image or its label)",
        "distribution": [
            {
                "@type": "cr:FileObject",
                "@id": "items.csv",
                "name": "items.csv",
                "contentUrl": items[0],
                "encodingFormat": "text/csv",
                "sha256": items[1],
            },
            *(
                {
                    "@type": "cr:FileObject",
                    "@id": file,
                    "name": file,
                    "contentUrl": file,
                    "encodingFormat": "application/x-parquet",
                    "sha256": sha256,
                }
                for file, sha256 in planes.items()
            ),
        ],
        "recordSet": [
            {
                "@type": "cr:RecordSet",
                "@id": "items",
                "name": "items",
                "description": "One record per image: its split and where its pixels and label are.",
                "field": [
                    {
                        "@type": "cr:Field",
                        "@id": f"items/{column}",
                        "name": column,
                        "description": about,
                        "dataType": data_type,
                        "source": {"fileObject": {"@id": "items.csv"}, "extract": {"column": column}},
                    }
                    for column, data_type, about in COLUMNS
                ],
            },
            *(_plane_records(file) for file in planes),
        ],
    }


def _plane_records(file: str) -> dict[str, Any]:
    name = file.removesuffix(".parquet")
    about = "the images' planes" if file == PIXELS else "their labels' planes"
    return {
        "@type": "cr:RecordSet",
        "@id": name,
        "name": name,
        "description": f"One record per plane: {about}, at full resolution, losslessly.",
        "field": [
            {
                "@type": "cr:Field",
                "@id": f"{name}/{column}",
                "name": column,
                "description": description,
                "dataType": data_type,
                "source": {"fileObject": {"@id": file}, "extract": {"column": column}},
            }
            for column, data_type, description in PLANE_COLUMNS[file]
        ],
    }


def _json(document: Any) -> bytes:
    return json.dumps(document, indent=1, ensure_ascii=False).encode()
