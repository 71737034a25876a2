"""What other fairimage nodes read here: who this node is (its name and signing key), its change feed of
public records (signed), its audit log's checkpoints and consistency proofs, and the peers' checkpoints it
witnessed. All the same for every caller: the node's public face, to which a token never adds."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from fairimage.api.deps import RepositoryDep
from fairimage.model.federation.feed import (
    CHECKPOINT,
    CONSISTENCY,
    FEED,
    MAX_PAGE,
    MIRROR_SOURCES,
    SIGNATURE_HEADER,
    WELL_KNOWN,
    WITNESSED,
    ConsistencyProof,
    FeedPage,
    MirrorSources,
    NodeDocument,
    WitnessedList,
)
from fairimage.services.federation import feed, identity, mirror, transparency, witness

router = APIRouter(tags=["federation"])


@router.get(WELL_KNOWN, response_model=NodeDocument, summary="This node: its name, address and signing key")
def node_document(request: Request, repository: RepositoryDep) -> NodeDocument:
    return identity.describe(repository.settings, str(request.base_url))


@router.get(
    FEED,
    response_model=FeedPage,
    summary="The studies that changed after a cursor, as other nodes may see them; signed by the node's key",
    responses={400: {"description": "A cursor this feed did not give"}},
)
def changes(
    request: Request,
    repository: RepositoryDep,
    after: Annotated[
        str, Query(max_length=64, description="the cursor of the last page kept; '' = start")
    ] = "",
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> Response:
    body, signature = feed.page(repository, str(request.base_url), after, limit)
    return _signed(body, signature)


@router.get(
    CHECKPOINT,
    response_class=PlainTextResponse,
    summary="The audit log's latest checkpoint: a C2SP signed note of its size and Merkle root",
)
async def audit_checkpoint(repository: RepositoryDep) -> PlainTextResponse:
    note = await run_in_threadpool(transparency.checkpoint, repository)
    return PlainTextResponse(note)


@router.get(
    CONSISTENCY,
    response_model=ConsistencyProof,
    summary="An RFC 9162 proof that the audit log at size new extends the log at size old",
    responses={400: {"description": "Sizes outside the log"}},
)
def audit_consistency(
    repository: RepositoryDep,
    old: Annotated[int, Query(ge=0, le=2**62)],
    new: Annotated[int, Query(ge=0, le=2**62)],
) -> ConsistencyProof:
    return ConsistencyProof(old=old, new=new, proof=transparency.consistency_proof(repository, old, new))


@router.get(
    WITNESSED,
    response_model=WitnessedList,
    summary="The checkpoints of another node's audit log that this node checked and cosigned",
)
def witnessed_checkpoints(
    repository: RepositoryDep, origin: Annotated[str, Query(max_length=255, description="NODE/audit")]
) -> WitnessedList:
    return witness.witnessed(repository, origin)


@router.get(
    MIRROR_SOURCES + "/{object_id}",
    response_model=MirrorSources,
    summary="What a mirror of a public study or image copies: each image's identity and manifest; signed",
    responses={404: {"description": "No public study or image of that id"}},
)
def mirror_sources(request: Request, repository: RepositoryDep, object_id: str) -> Response:
    body, signature = mirror.sources(repository, str(request.base_url), object_id)
    return _signed(body, signature)


def _signed(body: bytes, signature: str) -> Response:
    """JSON as this node signed it: the exact bytes the signature covers, and the signature beside them."""
    return Response(body, media_type="application/json", headers={SIGNATURE_HEADER: signature})
