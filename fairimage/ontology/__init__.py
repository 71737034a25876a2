"""Bundled ontologies, read from files shipped with the package (no network): each with its release and
licence recorded. ``scripts/build_*.py`` rebuild them from the ontologies' own files."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from fairimage.model.duo import Term, TermKind, Vocabulary


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
