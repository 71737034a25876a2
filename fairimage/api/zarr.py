"""OME-Zarr served so that remote zarr clients work: 404 for any missing key, ranges, HEAD, ETag/304."""

from __future__ import annotations

import os
import re
from typing import Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from fairimage.api.deps import PrincipalDep, RepositoryDep, repository_of
from fairimage.api.hot import HotPath
from fairimage.model.governance.policy import Principal
from fairimage.services.governance import access
from fairimage.services.governance.access import ImageObject

router = APIRouter(tags=["ome-zarr"])


_KEY_PATH = "/zarr/{image_id}.ome.zarr/{key:path}"
# Objects up to this size (every chunk at the default 1 MiB chunk size) are read whole and sent as one body:
# one read and one socket write instead of a file streamed in 64 KiB pieces through worker threads.
WHOLE_READ_BYTES = 8 << 20
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
async def zarr_key(
    image_id: str, key: str, request: Request, repository: RepositoryDep, principal: PrincipalDep
) -> Response:
    # Most requests are chunks of an image a client is already reading: they are answered on the event loop.
    # The first key of an image after a second, and everything in object storage, goes to a worker thread.
    if access.answers_from_memory(repository, image_id, key):
        return _key_response(image_id, key, request, repository, principal)
    return await run_in_threadpool(_key_response, image_id, key, request, repository, principal)


class ZarrKeys(HotPath):
    """The hot path of OME-Zarr keys: a chunk of an image being read, when the access decision is known from
    memory (``access.answers_from_memory``)."""

    paths = (re.compile(r"/zarr/(?P<zarr_id>[^/]+)\.ome\.zarr/(?P<key>.*)"),)

    def answer(self, request: Request, principal: Principal, found: re.Match[str]) -> Response | None:
        repository = repository_of(request)
        zarr_id, key = found["zarr_id"], found["key"]
        if not access.answers_from_memory(repository, zarr_id, key):
            return None
        return _key_response(zarr_id, key, request, repository, principal)


def _key_response(
    image_id: str, key: str, request: Request, repository: RepositoryDep, principal: PrincipalDep
) -> Response:
    stored = access.zarr_object(repository, principal, image_id, key)
    media_type = "application/json" if key.endswith(".json") else "application/octet-stream"
    if stored.path is None or stored.info.size <= WHOLE_READ_BYTES:
        return _object_response(request, repository, stored, media_type)
    # A large object (a shard): Starlette streams the file in pieces and answers Range (single, multiple,
    # suffix) with 206/416 itself.
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
    """One read and one body, with the semantics of FileResponse: ETag/304, HEAD, one byte range (206, or
    416 when it lies outside the object); a request for several ranges gets the whole object. For objects
    in object storage and for local files up to ``WHOLE_READ_BYTES``."""
    size = stored.info.size
    etag = f'"{stored.info.etag}"' if stored.info.etag else f'"{size:x}-{int(stored.info.mtime * 1e6):x}"'
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
    body = stored.read(start, end) if end > start else b""
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
