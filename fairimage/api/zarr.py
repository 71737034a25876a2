"""OME-Zarr served so that remote zarr clients work: 404 for any missing key, ranges, HEAD, ETag/304."""

from __future__ import annotations

import os
from typing import Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse

from fairimage.api.deps import PrincipalDep, RepositoryDep
from fairimage.model.plates.layout import PLATE_ID_PREFIX
from fairimage.services.governance.access import ImageObject, image_object, plate_object

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
    summary="A key of an image's or a plate's OME-Zarr 0.5 group (zarr.json, chunks)",
    responses=_RESPONSES,
)
def zarr_key(
    image_id: str, key: str, request: Request, repository: RepositoryDep, principal: PrincipalDep
) -> Response:
    if image_id.startswith(PLATE_ID_PREFIX):  # a plate: plate, row and well groups, then its fields' images
        stored = plate_object(repository, principal, image_id, key)
    else:
        stored = image_object(repository, principal, image_id, key)
    media_type = "application/json" if key.endswith(".json") else "application/octet-stream"
    if stored.path is None:
        return _object_response(request, repository, stored, media_type)
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


def _object_response(
    request: Request, repository: RepositoryDep, stored: ImageObject, media_type: str
) -> Response:
    """The same semantics as FileResponse, for an object in object storage: ETag/304, HEAD, one byte range
    (206, or 416 when it lies outside the object); a request for several ranges gets the whole object."""
    size = stored.info.size
    etag = f'"{stored.info.etag}"' if stored.info.etag else f'"{size:x}-{stored.info.mtime:.0f}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache", "Accept-Ranges": "bytes"}
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    wanted = _byte_range(request.headers.get("range"), size)
    if wanted == "unsatisfiable":
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    start, end = wanted or (0, size)
    status = 206 if wanted else 200
    if wanted:
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    if request.method == "HEAD":
        return Response(
            status_code=status, media_type=media_type, headers={**headers, "Content-Length": str(end - start)}
        )
    body = stored.read(repository, start, end) if end > start else b""
    return Response(body, status_code=status, media_type=media_type, headers=headers)


def _byte_range(header: str | None, size: int) -> tuple[int, int] | Literal["unsatisfiable"] | None:
    """[start, end) of a single ``bytes=`` range (RFC 9110, 14.1.2), None for no/ignored range."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header[len("bytes=") :].strip().partition("-")
    try:
        if not first:  # suffix: the last N bytes
            count = int(last)
            return (max(0, size - count), size) if count > 0 and size else "unsatisfiable"
        start = int(first)
        final = int(last) if last else size - 1
    except ValueError:
        return None
    if last and final < start:  # an invalid range, which a server ignores
        return None
    if start >= size:
        return "unsatisfiable"
    end = min(final + 1, size)
    return start, end


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags
