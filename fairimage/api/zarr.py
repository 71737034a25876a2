"""OME-Zarr served so that remote zarr clients work: 404 for any missing key, ranges, HEAD, ETag/304."""

from __future__ import annotations

import os

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse

from fairimage.api.deps import PrincipalDep, RepositoryDep
from fairimage.model.errors import StorageError
from fairimage.services.access import image_object

router = APIRouter(tags=["ome-zarr"])


_KEY_PATH = "/zarr/{image_id}.ome.zarr/{key:path}"
_RESPONSES: dict[int | str, dict[str, str]] = {
    206: {"description": "Partial content"},
    304: {"description": "Not modified"},
    404: {"description": "No such key"},
    416: {"description": "Range not satisfiable"},
}


@router.head(
    _KEY_PATH, operation_id="head_zarr_key", summary="Size and ETag of an OME-Zarr key", responses=_RESPONSES
)
@router.get(
    _KEY_PATH,
    operation_id="get_zarr_key",
    summary="A key of an image's OME-Zarr 0.5 group (zarr.json, chunks)",
    responses=_RESPONSES,
)
def zarr_key(
    image_id: str, key: str, request: Request, repository: RepositoryDep, principal: PrincipalDep
) -> Response:
    stored = image_object(repository, principal, image_id, key)
    if stored.path is None:
        raise StorageError("serving from object storage is not available yet")
    media_type = "application/json" if key.endswith(".json") else "application/octet-stream"
    # Starlette streams the file and answers Range (single, multiple, suffix) with 206/416 itself.
    response = FileResponse(
        stored.path,
        media_type=media_type,
        stat_result=os.stat(stored.path),
        headers={"Cache-Control": "no-cache"},
    )
    etag = response.headers["etag"]
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers={"ETag": etag, "Cache-Control": "no-cache"})
    return response


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags
