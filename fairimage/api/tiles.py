"""Rendered pictures: thumbnails, rendered regions, Deep Zoom and IIIF Image API 3.0.

Each route parses its request, calls one service function (which asks the access service first) and
sends the picture with its ETag and Cache-Control, or 304 when the client has it already."""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse

from fairimage.api.deps import PrincipalDep, RendererDep
from fairimage.api.hot import HotPath
from fairimage.model.governance.policy import Principal
from fairimage.services.viewing import iiif, tiles
from fairimage.services.viewing.tiles import Picture

router = APIRouter(tags=["rendered images"])

Format = Literal["png", "jpeg", "webp"]
_PICTURE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/png": {}, "image/jpeg": {}, "image/webp": {}}, "description": "The picture"},
    304: {"description": "Not modified"},
    400: {"description": "A parameter that cannot be used; the message says which and how to fix it"},
    404: {"description": "No such image"},
}


def plane_query(
    z: Annotated[int | None, Query(description="z index (default: the middle plane)")] = None,
    t: Annotated[int | None, Query(description="t index (default 0)")] = None,
    c: Annotated[str | None, Query(description="channels to show, 0-based, e.g. 0,2 (default: all)")] = None,
    colors: Annotated[str | None, Query(description="RRGGBB per channel in c, e.g. FF0000,00FF00")] = None,
    window: Annotated[
        str | None, Query(description="start:end per channel in c, e.g. 100:3000,0:5000")
    ] = None,
) -> dict[str, Any]:
    return {"z": z, "t": t, "channels": c, "colors": colors, "windows": window}


PlaneQuery = Annotated[dict[str, Any], Depends(plane_query)]
IfNoneMatch = Annotated[str | None, Header(include_in_schema=False)]


class TileRequests(HotPath):
    """The hot path of rendered tiles: IIIF image requests of at most ``HOT_SIDE`` pixels a side (what
    OpenSeadragon, Mirador and Leaflet ask for) and Deep Zoom tiles, of an image whose metadata and access
    decision are in memory (``Renderer.answers_from_memory``), rendered on the event loop. Larger pictures,
    unknown query parameters and every error go to the routes."""

    methods = ("GET",)
    IIIF = re.compile(
        r"/iiif/3/(?P<image_id>[^/]+)/(?P<region>[^/]+)/(?P<size>[^/]+)/(?P<rotation>[^/]+)/(?P<quality>[^/]+)"
    )
    DEEPZOOM = re.compile(
        r"/api/images/(?P<image_id>[^/]+)/deepzoom_files/(?P<level>\d{1,3})/"
        r"(?P<column>\d{1,7})_(?P<row>\d{1,7})\.(?P<format>png|jpeg|webp)"
    )
    paths = (IIIF, DEEPZOOM)
    SIZE = re.compile(r"\^?!?(?P<width>\d{1,4})?,(?P<height>\d{1,4})?")
    HOT_SIDE = 512
    PLANE: ClassVar[dict[str, str]] = {
        "z": "z",
        "t": "t",
        "c": "channels",
        "colors": "colors",
        "window": "windows",
    }

    def answer(self, request: Request, principal: Principal, found: re.Match[str]) -> Response | None:
        renderer: tiles.Renderer = request.app.state.renderer
        if not renderer.answers_from_memory(found["image_id"]):
            return None
        plane = self._plane(request)
        if plane is None:
            return None
        tag = request.headers.get("if-none-match")
        if found.re is self.DEEPZOOM:
            level, column, row = int(found["level"]), int(found["column"]), int(found["row"])
            picture = tiles.deepzoom_tile(
                renderer, principal, found["image_id"], level, column, row, found["format"], plane, tag
            )
            return picture_response(picture)
        size = self.SIZE.fullmatch(found["size"])
        sides = [int(side) for side in (size["width"], size["height"]) if side] if size else []
        if not sides or max(sides) > self.HOT_SIDE:
            return None
        segments = (found["region"], found["size"], found["rotation"], found["quality"])
        return picture_response(iiif.image(renderer, principal, found["image_id"], segments, plane, tag))

    def _plane(self, request: Request) -> dict[str, Any] | None:
        """The plane query as the routes take it (``plane_query``); None where the route should judge it."""
        given = request.query_params
        if any(key not in self.PLANE for key in given):
            return None
        plane: dict[str, Any] = {name: None for name in self.PLANE.values()}
        for key, name in self.PLANE.items():
            if key in given:
                value = given[key]
                if key in ("z", "t"):
                    if not value.isdigit():
                        return None
                    plane[name] = int(value)
                else:
                    plane[name] = value
        return plane


def picture_response(picture: Picture) -> Response:
    headers = {"ETag": picture.etag, "Cache-Control": picture.cache_control}
    if picture.not_modified:
        return Response(status_code=304, headers=headers)
    return Response(picture.content, media_type=picture.media_type, headers=headers)


@router.get(
    "/api/images/{image_id}/thumbnail",
    summary="The whole image fitted into size x size (middle z, first t, default channels)",
    response_class=Response,
    responses=_PICTURE,
)
def thumbnail(
    image_id: str,
    renderer: RendererDep,
    principal: PrincipalDep,
    size: Annotated[int, Query(ge=16, le=1024)] = 256,
    format: Format = "png",
    if_none_match: IfNoneMatch = None,
) -> Response:
    return picture_response(tiles.thumbnail(renderer, principal, image_id, size, format, if_none_match))


@router.get(
    "/api/plates/{plate_id}/overview",
    summary="Every well of a plate in one picture: each well's first field in a size x size cell of its grid",
    response_class=Response,
    responses=_PICTURE,
)
def plate_overview(
    plate_id: str,
    renderer: RendererDep,
    principal: PrincipalDep,
    size: Annotated[int, Query(ge=8, le=128)] = 24,
    if_none_match: IfNoneMatch = None,
) -> Response:
    return picture_response(tiles.plate_overview(renderer, principal, plate_id, size, if_none_match))


@router.get(
    "/api/images/{image_id}/render",
    summary="A region of one plane, channels composed with colours and windows as the viewer does",
    response_class=Response,
    responses=_PICTURE,
)
def render(
    image_id: str,
    renderer: RendererDep,
    principal: PrincipalDep,
    plane: PlaneQuery,
    region: Annotated[str | None, Query(description="x,y,w,h in full-resolution pixels")] = None,
    size: Annotated[int | None, Query(ge=1, le=4096, description="fit into size x size")] = None,
    level: Annotated[int | None, Query(ge=0, description="pyramid level to render at")] = None,
    format: Format = "png",
    if_none_match: IfNoneMatch = None,
) -> Response:
    picture = tiles.render(renderer, principal, image_id, plane, region, size, level, format, if_none_match)
    return picture_response(picture)


@router.get(
    "/api/images/{image_id}/orthogonal",
    summary="An xz (at a row) or yz (at a column) plane of a 3D image through every z, z stretched to the "
    "voxels' depth; channels composed as in render",
    response_class=Response,
    responses=_PICTURE,
)
def orthogonal(
    image_id: str,
    renderer: RendererDep,
    principal: PrincipalDep,
    plane: PlaneQuery,
    view: Annotated[Literal["xz", "yz"], Query(description="xz: the plane at row at; yz: at column at")],
    at: Annotated[
        int | None, Query(ge=0, description="the row (xz) or column (yz); default the middle")
    ] = None,
    size: Annotated[int, Query(ge=1, le=4096, description="fit into size x size")] = 1024,
    format: Format = "png",
    if_none_match: IfNoneMatch = None,
) -> Response:
    picture = tiles.orthogonal(renderer, principal, image_id, view, at, plane, size, format, if_none_match)
    return picture_response(picture)


@router.get(
    "/api/images/{image_id}/deepzoom.dzi",
    summary="Deep Zoom descriptor; its query (z, t, c, colors, window) is passed on to the tiles",
    response_class=Response,
    responses={200: {"content": {"application/xml": {}}}, 404: {"description": "No such image"}},
)
def deepzoom(
    image_id: str, renderer: RendererDep, principal: PrincipalDep, format: Format = "png"
) -> Response:
    descriptor = tiles.deepzoom(renderer, principal, image_id, format)
    return Response(descriptor, media_type="application/xml", headers={"Cache-Control": "no-cache"})


@router.get(
    "/api/images/{image_id}/deepzoom_files/{level}/{column}_{row}.{format}",
    summary="One Deep Zoom tile",
    response_class=Response,
    responses=_PICTURE,
)
def deepzoom_tile(
    image_id: str,
    level: int,
    column: int,
    row: int,
    format: Format,
    renderer: RendererDep,
    principal: PrincipalDep,
    plane: PlaneQuery,
    if_none_match: IfNoneMatch = None,
) -> Response:
    picture = tiles.deepzoom_tile(
        renderer, principal, image_id, level, column, row, format, plane, if_none_match
    )
    return picture_response(picture)


@router.get(
    "/iiif/3/{image_id}",
    summary="IIIF base URI: redirects to info.json",
    status_code=303,
    response_class=RedirectResponse,
    responses={303: {"description": "See the image's info.json"}, 404: {"description": "No such image"}},
)
def iiif_base(
    image_id: str, request: Request, renderer: RendererDep, principal: PrincipalDep
) -> RedirectResponse:
    renderer.image(principal, image_id)  # the access check: an image one may not see is a 404 here too
    return RedirectResponse(str(request.url_for("iiif_info", image_id=image_id)), status_code=303)


@router.get(
    "/iiif/3/{image_id}/info.json",
    name="iiif_info",
    summary="IIIF Image API 3.0 image information (compliance level 2)",
    response_class=JSONResponse,
    responses={
        200: {"description": "The image's information", "content": {iiif.MEDIA_TYPE: {}}},
        404: {"description": "No such image"},
    },
)
def iiif_info(image_id: str, request: Request, renderer: RendererDep, principal: PrincipalDep) -> Response:
    service_url = str(request.url_for("iiif_base", image_id=image_id))
    document = iiif.info(renderer, principal, image_id, service_url)
    return JSONResponse(document, media_type=iiif.MEDIA_TYPE, headers={"Cache-Control": "no-cache"})


@router.get(
    "/iiif/3/{image_id}/{region}/{size}/{rotation}/{quality_format}",
    summary="IIIF Image API 3.0 image request: {region}/{size}/{rotation}/{quality}.{format}",
    response_class=Response,
    responses=_PICTURE,
)
def iiif_image(
    image_id: str,
    region: str,
    size: str,
    rotation: str,
    quality_format: str,
    renderer: RendererDep,
    principal: PrincipalDep,
    plane: PlaneQuery,
    if_none_match: IfNoneMatch = None,
) -> Response:
    segments = (region, size, rotation, quality_format)
    picture = iiif.image(renderer, principal, image_id, segments, plane, if_none_match)
    return picture_response(picture)
