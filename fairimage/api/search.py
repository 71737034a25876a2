"""Search over HTTP and the search page: the same service as ``fairimage search``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from fairimage.api.deps import PrincipalDep, RepositoryDep
from fairimage.api.schemas import ImageOut
from fairimage.model.discovery.search import FACETS
from fairimage.model.errors import InvalidInputError
from fairimage.services.discovery import search as search_service
from fairimage.services.federation import search as federated

router = APIRouter(tags=["search"])
FacetQuery = Annotated[list[str] | None, Query(max_length=255)]


class FacetCountOut(BaseModel):
    value: str
    label: str
    count: int


class HitOut(ImageOut):
    rank: float


class StudyHitOut(BaseModel):
    pid: str
    node: str
    title: str
    images: int
    access: str
    url: str
    source: str


class PeerStatusOut(BaseModel):
    name: str
    status: str
    ms: int
    detail: str


class FederatedOut(BaseModel):
    """The studies that match here and at the peers (scope=federated), facet counts summed over nodes."""

    total: int
    studies: list[StudyHitOut]
    facets: dict[str, list[FacetCountOut]]
    peers: list[PeerStatusOut]


class SearchOut(BaseModel):
    query: str
    filters: dict[str, list[str]]
    total: int
    hits: list[HitOut]
    facets: dict[str, list[FacetCountOut]]
    facets_left_off: dict[str, int] = Field(
        description="per facet, how many more values it has than are listed (ask with facet_values)"
    )
    federated: FederatedOut | None = None


def run_search(
    request: Request,
    repository: Any,
    principal: Any,
    q: str,
    filters: dict[str, list[str] | None],
    limit: int,
    offset: int,
    federated: Literal["no", "harvested", "live"] = "no",
    facet_values: int = search_service.FACET_VALUES,
) -> SearchOut:
    """A page of this node's images and, with ``federated``, the studies across the network (from the
    same local search)."""
    chosen = {facet: values for facet, values in filters.items() if values}
    results = search_service.search(repository, principal, q, chosen, limit, offset, facet_values)
    base = str(request.base_url)
    network = None
    if federated != "no":
        network = federated_out(request, repository, principal, results, federated == "live")
    return SearchOut(
        query=results.query,
        filters=results.filters,
        total=results.total,
        hits=[HitOut(**ImageOut.of(hit.image, base).model_dump(), rank=hit.rank) for hit in results.hits],
        facets=_facets_out(results.facets),
        facets_left_off=results.facets_left_off,
        federated=network,
    )


@router.get(
    "/api/search",
    response_model=SearchOut,
    summary="Images matching every word of q and every facet value given, best first, with facet counts",
    responses={400: {"description": "An unknown facet or term"}},
)
def search_images(
    request: Request,
    repository: RepositoryDep,
    principal: PrincipalDep,
    q: Annotated[str, Query(max_length=500, description="words, e.g. 'confocal HeLa'")] = "",
    organism: FacetQuery = None,
    imaging_method: FacetQuery = None,
    fluorophore: FacetQuery = None,
    cell_type: FacetQuery = None,
    organism_part: FacetQuery = None,
    study: FacetQuery = None,
    dimensionality: FacetQuery = None,
    dtype: FacetQuery = None,
    license: FacetQuery = None,
    channel: FacetQuery = None,
    tag: FacetQuery = None,
    compound: FacetQuery = None,
    control: FacetQuery = None,
    origin: Annotated[
        list[str] | None,
        Query(
            max_length=255,
            description="acquired, or ai-generated (a model made it): 'acquired' leaves those out",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=search_service.MAX_LIMIT)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    facet_values: Annotated[
        int,
        Query(
            ge=1,
            le=search_service.MAX_FACET_VALUES,
            description="values listed per facet, the most frequent first (and those filtered on)",
        ),
    ] = search_service.FACET_VALUES,
    scope: Annotated[
        Literal["local", "federated"],
        Query(description="federated: also the studies that match at the peers (their harvested records)"),
    ] = "local",
    live: Annotated[
        bool, Query(description="with scope=federated: ask the peers too, within a timeout")
    ] = False,
) -> SearchOut:
    filters = {
        "organism": organism,
        "imaging_method": imaging_method,
        "fluorophore": fluorophore,
        "cell_type": cell_type,
        "organism_part": organism_part,
        "study": study,
        "dimensionality": dimensionality,
        "dtype": dtype,
        "license": license,
        "channel": channel,
        "tag": tag,
        "compound": compound,
        "control": control,
        "origin": origin,
    }
    assert set(filters) == set(FACETS)
    mode: Literal["no", "harvested", "live"] = "no" if scope == "local" else "live" if live else "harvested"
    return run_search(request, repository, principal, q, filters, limit, offset, mode, facet_values)


def _facets_out(facets: dict[str, list[search_service.FacetCount]]) -> dict[str, list[FacetCountOut]]:
    return {name: [FacetCountOut(**count.__dict__) for count in counts] for name, counts in facets.items()}


def federated_out(
    request: Request, repository: Any, principal: Any, here: search_service.SearchResults, live: bool
) -> FederatedOut:
    base = str(request.base_url)
    results = federated.federated_search(
        repository, principal, base, here.query, here.filters, live, here=here
    )
    return FederatedOut(
        total=results.total,
        studies=[StudyHitOut(**hit.__dict__) for hit in results.studies],
        facets=_facets_out(results.facets),
        peers=[PeerStatusOut(**peer.__dict__) for peer in results.peers],
    )


@router.get("/search", response_class=HTMLResponse, include_in_schema=False)
def search_page(
    request: Request, repository: RepositoryDep, principal: PrincipalDep, q: str = "", scope: str = "local"
) -> HTMLResponse:
    from fairimage.api.pages import templates

    filters = {facet: values for facet in FACETS if (values := request.query_params.getlist(facet))}
    network = None
    try:
        found = search_service.search(repository, principal, q[:500], filters, 60, 0)
        if scope == "federated":
            base = str(request.base_url)
            network = federated.federated_search(
                repository, principal, base, q[:500], found.filters, True, here=found
            )
        error = ""
    except InvalidInputError as exc:
        found, error = None, exc.message
    images = [hit.image for hit in found.hits] if found is not None else []
    context = {
        "q": q,
        "found": found,
        "images": images,
        "error": error,
        "filters": filters,
        "network": network,
        "scope": scope,
    }
    return templates.TemplateResponse(request, "search.html", context, status_code=400 if error else 200)
