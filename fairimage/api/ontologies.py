"""The bundled ontologies over HTTP: what is bundled (with versions and licences), term lookup and
autocomplete (CURIE, IRI, label or synonym), and a term's place in the hierarchy."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi import Path as FastApiPath
from pydantic import BaseModel

from fairimage import ontology
from fairimage.model.curation.ontology import Ontology, OntologyTerm
from fairimage.model.errors import NotFoundError

router = APIRouter(prefix="/api/ontologies", tags=["ontologies"])


class OntologyOut(BaseModel):
    name: str
    title: str
    version: str
    license: str
    source: str
    terms: int


class TermOut(BaseModel):
    id: str
    iri: str
    label: str
    synonyms: list[str]
    parents: list[str]
    part_of: list[str]  # CL and UBERON: the anatomy a cell type or a structure is part of

    @classmethod
    def of(cls, term: OntologyTerm) -> TermOut:
        return cls(
            id=term.id,
            iri=term.iri,
            label=term.label,
            synonyms=list(term.synonyms),
            parents=list(term.parents),
            part_of=list(term.part_of),
        )


class TermDetailOut(TermOut):
    ancestors: list[TermOut]
    children: list[TermOut]


def _out(key: str, bundle: Ontology) -> OntologyOut:
    return OntologyOut(
        name=key,
        title=bundle.title,
        version=bundle.version,
        license=bundle.license,
        source=bundle.source,
        terms=len(bundle.terms),
    )


# DUO's terms have their own route and shape (/api/ontologies/duo/terms): the names here are the term
# ontologies' (documented as such; any other name is a 404 that lists them).
OntologyName = Annotated[
    str, FastApiPath(description=", ".join(ontology.NAMES), json_schema_extra={"enum": list(ontology.NAMES)})
]


@router.get(
    "", response_model=list[OntologyOut], summary="The bundled ontologies, their releases and licences"
)
def list_ontologies() -> list[OntologyOut]:
    duo = ontology.duo()
    found = [_out(key, ontology.ontology(key)) for key in ontology.NAMES]
    found.append(
        OntologyOut(
            name="duo",
            title="Data Use Ontology",
            version=duo.version,
            license=duo.license,
            source="https://github.com/EBISPOT/DUO",
            terms=len(duo.terms),
        )
    )
    return found


@router.get(
    "/{name}/terms",
    response_model=list[TermOut],
    summary="Autocomplete: terms whose identifier, label or synonym matches",
    responses={404: {"description": "No such ontology"}},
)
def search_terms(
    name: OntologyName,
    q: Annotated[str, Query(max_length=200, description="words typed so far, a CURIE or an IRI")] = "",
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> list[TermOut]:
    return [TermOut.of(term) for term in ontology.ontology(name).complete(q, limit)]


@router.get(
    "/{name}/terms/{term_id:path}",
    response_model=TermDetailOut,
    summary="One term by CURIE or IRI, with its ancestors and children",
    responses={404: {"description": "No such ontology or term"}},
)
def get_term(name: OntologyName, term_id: str) -> TermDetailOut:
    bundle = ontology.ontology(name)
    term = bundle.term(term_id)
    if term is None:
        raise NotFoundError(f"{term_id!r} is not a term of the bundled {bundle.name} ({bundle.version})")
    children = [bundle.term(child) for child in sorted(bundle.descendants(term.id)) if child != term.id]
    direct = [child for child in children if child is not None and term.id in child.parents]
    return TermDetailOut(
        **TermOut.of(term).model_dump(),
        ancestors=[TermOut.of(ancestor) for ancestor in bundle.ancestors(term.id)],
        children=[TermOut.of(child) for child in direct],
    )
