"""The OAI-PMH 2.0 endpoint, so aggregators can harvest this node: ``/oai?verb=...`` (GET or POST)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from fairimage.api.deps import PrincipalDep, RepositoryDep
from fairimage.services.discovery import oai

router = APIRouter(tags=["harvesting"])


_SUMMARY = "OAI-PMH 2.0: Identify, ListMetadataFormats, ListSets, ListIdentifiers, ListRecords, GetRecord"
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/xml": {}}, "description": "An OAI-PMH response (errors are 200 too)"}
}


# The protocol allows both methods; one route each, so that each has its own OpenAPI operation id.
@router.post(
    "/oai",
    operation_id="oai_pmh_post",
    name="oai_pmh_post",
    summary=_SUMMARY,
    response_class=Response,
    responses=_RESPONSES,
)
@router.get(
    "/oai",
    operation_id="oai_pmh_get",
    name="oai_pmh",
    summary=_SUMMARY,
    response_class=Response,
    responses=_RESPONSES,
)
async def oai_pmh(request: Request, repository: RepositoryDep, principal: PrincipalDep) -> Response:
    pairs = list(request.query_params.multi_items())
    if request.method == "POST":
        pairs += [
            (key, value) for key, value in (await request.form()).multi_items() if isinstance(value, str)
        ]
    base = str(request.url_for("oai_pmh"))
    body = await run_in_threadpool(
        oai.handle, repository, principal, pairs, base, request.url.hostname or "localhost"
    )
    return Response(body, media_type="text/xml; charset=utf-8")
