"""Bundled ontologies, read from files shipped with the package (no network): each with its release and
licence recorded. ``scripts/build_*.py`` rebuild them from the ontologies' own files."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from fairimage.model.curation.ontology import Ontology, OntologyTerm
from fairimage.model.errors import NotFoundError
from fairimage.model.governance.duo import Term, TermKind, Vocabulary
from fairimage.model.privacy.deid import Profile, ProfileAttribute

# The bundled term ontologies by the names the API and the metadata use (DUO has its own model).
NAMES = ("fbbi", "ncbitaxon", "edam", "cl", "uberon")


@cache
def duo() -> Vocabulary:
    """The Data Use Ontology release fairimage matches consent against (see ``duo.json``'s version)."""
    data = json.loads(resources.files(__package__).joinpath("duo.json").read_text(encoding="utf-8"))
    terms = tuple(
        Term(
            id=term["id"],
            shorthand=term["shorthand"],
            label=term["label"],
            definition=term["definition"],
            kind=TermKind(term["kind"]),
            parent=term["parent"],
        )
        for term in data["terms"]
    )
    return Vocabulary(
        version=data["version"], version_iri=data["version_iri"], license=data["license"], terms=terms
    )


@cache
def ontology(name: str) -> Ontology:
    """A bundled ontology subset by name (``fbbi``, ``ncbitaxon``, ``edam``, ``cl``, ``uberon``): see
    ``scripts/build_ontologies.py``."""
    key = name.lower()
    if key not in NAMES:
        raise NotFoundError(f"ontology {name!r} not found; the bundled ones are {', '.join(NAMES)} and duo")
    data = json.loads(resources.files(__package__).joinpath(f"{key}.json").read_text(encoding="utf-8"))
    iri_prefix = data["iri_prefix"]
    terms = tuple(
        OntologyTerm(
            id=term["id"],
            label=term["label"],
            synonyms=tuple(term["synonyms"]),
            parents=tuple(term["parents"]),
            iri=iri_prefix + term["id"].partition(":")[2],
            part_of=tuple(term.get("part_of", ())),
        )
        for term in data["terms"]
    )
    return Ontology(
        name=data["ontology"],
        title=data["title"],
        version=data["version"],
        license=data["license"],
        source=data["source"],
        prefix=data["prefix"],
        iri_prefix=iri_prefix,
        terms=terms,
    )


def vocabularies() -> dict[str, Ontology]:
    """Every bundled term ontology by name, as curation checks terms and search indexes them."""
    return {name: ontology(name) for name in NAMES}


def fbbi() -> Ontology:
    return ontology("fbbi")


def ncbitaxon() -> Ontology:
    return ontology("ncbitaxon")


def edam() -> Ontology:
    """EDAM-bioimaging: bioimage analysis operations, imaging topics, image data types and formats."""
    return ontology("edam")


def cl() -> Ontology:
    """The Cell Ontology's cell types, with the anatomy (UBERON) they are part of."""
    return ontology("cl")


def uberon() -> Ontology:
    """UBERON anatomy: organs, tissues, systems and body parts, by ``is_a`` and ``part_of``."""
    return ontology("uberon")


@cache
def dicom_profile() -> Profile:
    """DICOM PS3.15 Table E.1-1 (Basic Application Level Confidentiality Profile attributes and option
    actions) of the edition ``dicom_deid.json`` records; ``scripts/build_deid_profile.py`` rebuilds it."""
    data = json.loads(resources.files(__package__).joinpath("dicom_deid.json").read_text(encoding="utf-8"))
    return Profile(
        data["edition"],
        tuple(
            ProfileAttribute(row["tag"], row["name"], row["action"], dict(row["options"]))
            for row in data["attributes"]
        ),
    )
