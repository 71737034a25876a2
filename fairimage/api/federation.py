"""What other fairimage nodes read here: who this node is (its name and signing key) and its change feed
of public records, signed. Both are the same for every caller: the feed is the node's public face, so a
token never adds to it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from fairimage.api.deps import RepositoryDep
from fairimage.model.federation.feed import (
    FEED,
    MAX_PAGE,
    SIGNATURE_HEADER,
    WELL_KNOWN,
    FeedPage,
    NodeDocument,
)
from fairimage.services.federation import feed, identity

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
    return Response(body, media_type="application/json", headers={SIGNATURE_HEADER: signature})
