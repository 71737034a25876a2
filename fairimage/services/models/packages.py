"""Reading what a model is registered from: a bioimage.io package (an rdf.yaml or bioimageio.yaml, a folder
holding one, or its .zip), validated by ``bioimageio.spec`` with its files' sha256 checked; or a model card
of our own (a YAML or JSON file, ``model.models.ModelCard``). Either way the result is a card and the files
to keep: for a package, the package as ``bioimageio.spec`` writes it (package.zip, which bioimage.io tools
open as it is, and its rdf.yaml); for a card, the card."""

from __future__ import annotations

import json
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from fairimage.model.errors import InvalidInputError
from fairimage.model.models import Kind, ModelCard

RDF_NAMES = ("rdf.yaml", "bioimageio.yaml")
PACKAGE = "package.zip"
CARD_SUFFIX = ".yaml"
MAX_CARD_BYTES = 1 << 20  # a card or an rdf is text: a larger file is something else


@dataclass(frozen=True)
class ReadModel:
    kind: Kind
    card: ModelCard
    files: dict[str, Path]  # stored name -> the file to copy


@contextmanager
def read_model(path: Path) -> Iterator[ReadModel]:
    """The card and files of the model at ``path``; InvalidInputError naming the file and the fix. The
    files live until the context ends."""
    if not path.exists():
        raise InvalidInputError(f"{path}: no such file or folder; give a bioimage.io package or a model card")
    rdf = _rdf_in(path) if path.is_dir() else path
    if rdf.suffix == ".zip" or _is_bioimageio(rdf):
        with _package(rdf) as read:
            yield read
        return
    yield ReadModel("card", _card(rdf), {f"card{rdf.suffix or CARD_SUFFIX}": rdf})


def _rdf_in(folder: Path) -> Path:
    for name in RDF_NAMES:
        if (folder / name).is_file():
            return folder / name
    found = sorted(folder.glob("*.bioimageio.yaml"))
    if found:
        return found[0]
    raise InvalidInputError(
        f"{folder}: no rdf.yaml or bioimageio.yaml in it; give a bioimage.io model package or a model "
        "card file"
    )


def _document(path: Path) -> dict[str, Any]:
    if path.stat().st_size > MAX_CARD_BYTES:
        raise InvalidInputError(f"{path}: {path.stat().st_size} bytes is not a model card or rdf.yaml")
    try:
        text = path.read_text(encoding="utf-8")
        document = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as exc:
        raise InvalidInputError(
            f"{path}: not a model card or rdf.yaml, which are YAML or JSON text ({str(exc).splitlines()[0]})"
        ) from None
    if not isinstance(document, dict):
        raise InvalidInputError(f"{path}: a model card is a mapping of fields (name, version, ...)")
    return document


def _is_bioimageio(path: Path) -> bool:
    document = _document(path)
    return document.get("type") == "model" and "format_version" in document


def _card(path: Path) -> ModelCard:
    try:
        return ModelCard.model_validate(_document(path))
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "card"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise InvalidInputError(f"{path}: {where}: {error['msg']}{more}; fix the model card") from None


@contextmanager
def _package(source: Path) -> Iterator[ReadModel]:
    from bioimageio.spec import InvalidDescr, load_description, save_bioimageio_package

    description = load_description(source, perform_io_checks=True)
    if isinstance(description, InvalidDescr) or description.type != "model":
        raise InvalidInputError(f"{source}: not a valid bioimage.io model: {_first_errors(description)}")
    with tempfile.TemporaryDirectory(prefix="fairimage-model-") as folder:
        package = Path(folder) / PACKAGE
        save_bioimageio_package(description, output_path=package)
        rdf = Path(folder) / "rdf.yaml"
        with zipfile.ZipFile(package) as archive:
            rdf.write_bytes(archive.read("rdf.yaml"))
        yield ReadModel("bioimageio", _card_of(description), {PACKAGE: package, "rdf.yaml": rdf})


def _first_errors(description: Any) -> str:
    """The validator's first error, shortened to a line, and how many more there are."""
    if getattr(description, "type", "model") != "model":
        return f"it describes a {description.type}, not a model"
    errors: dict[str, str] = {}
    for detail in description.validation_summary.details:
        for error in detail.errors:
            where = ".".join(str(p) for p in error.loc if not str(p).startswith(("function-", "union[")))
            errors.setdefault(where or "rdf", error.msg)
    if not errors:
        return "the validator gave no reason"
    where, message = next(iter(errors.items()))
    if message.startswith("Input should be '") and message.count("'") > 8:  # a list of every allowed value
        message = "not one of the values the bioimage.io spec allows"
    message = message if len(message) <= 120 else message[:117] + "..."
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {message}{more}"


def _card_of(description: Any) -> ModelCard:
    """Our card of a bioimage.io model: what its description says, in the card's terms."""
    fields = description.model_dump(mode="json")
    training = fields.get("training_data")
    return ModelCard.model_validate(
        {
            "name": fields["name"],
            "version": str(fields.get("version") or "1"),
            "description": fields.get("description") or "",
            "authors": [
                {"name": a["name"], "orcid": a.get("orcid"), "affiliation": a.get("affiliation")}
                for a in fields.get("authors") or []
            ],
            "license": fields.get("license"),
            "task": ", ".join(fields.get("tags") or []) or None,
            "training": {"parameters": {"bioimage.io training data": training} if training else {}},
            "weights": sorted(name for name, weights in (fields.get("weights") or {}).items() if weights),
            "inputs": [_tensor(tensor) for tensor in fields.get("inputs") or []],
            "outputs": [_tensor(tensor) for tensor in fields.get("outputs") or []],
        }
    )


def _tensor(tensor: dict[str, Any]) -> str:
    """A tensor as people read it: its id and axes, e.g. ``raw (batch, channel, y, x)``."""
    axes = tensor.get("axes")
    if isinstance(axes, list):
        axes = ", ".join(str(a.get("id") or a.get("type")) for a in axes if isinstance(a, dict))
    return f"{tensor.get('id') or tensor.get('name')} ({axes})"
