"""model.errors mapped to HTTP once: a JSON body {"error": {"code", "message"}} with the class's status;
a browser asking for a page that does not exist gets the HTML 404 page instead."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from fairimage.model.errors import FairimageError, NotFoundError, ThrottledError

DRS_PATH = "/ga4gh/drs/"
_MACHINE_PATHS = ("/ga4gh/", "/api/", "/zarr/", "/iiif/", "/static/", "/openapi.json", "/docs")


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def drs_error(status: int, message: str) -> JSONResponse:
    """GA4GH DRS's own error shape."""
    return JSONResponse({"msg": message, "status_code": status}, status_code=status)


def wants_page(request: Request) -> bool:
    """A person's browser asking for a page, not a client asking the API or for data."""
    return not request.url.path.startswith(_MACHINE_PATHS) and "text/html" in request.headers.get(
        "accept", ""
    )


def validation_message(errors: list[dict[str, Any]]) -> str:
    """FastAPI's validation errors as one line naming each field and what to do."""
    parts = []
    for error in errors[:5]:
        where = ".".join(str(part) for part in error.get("loc", ())) or "request"
        if error.get("type") == "extra_forbidden":
            parts.append(
                f"{where}: not a field of this endpoint, so it would not be set; remove it (see /docs)"
            )
        else:
            parts.append(f"{where}: {error.get('msg', 'invalid')}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more


def register_error_handlers(app: FastAPI) -> None:
    from fairimage.api.pages import not_found_page  # the pages import this module's router helpers

    @app.exception_handler(FairimageError)
    async def _fairimage_error(request: Request, exc: FairimageError) -> Response:
        if isinstance(exc, NotFoundError) and wants_page(request):
            return not_found_page(request, exc.message)
        if request.url.path.startswith(DRS_PATH):
            response: Response = drs_error(exc.http_status, exc.message)
        else:
            response = error_response(exc.http_status, exc.code, exc.message)
        if exc.http_status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="fairimage"'
        if isinstance(exc, ThrottledError):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError) -> Response:
        errors = list(exc.errors())
        if request.url.path.startswith(DRS_PATH):
            return drs_error(422, validation_message(errors))
        body = {
            "error": {"code": "invalid_request", "message": validation_message(errors)},
            "detail": jsonable_encoder(errors),  # FastAPI's own list, for clients that read it
        }
        return JSONResponse(body, status_code=422)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404 and wants_page(request):
            return not_found_page(request, f"There is no page at {request.url.path}.")
        if request.url.path.startswith(DRS_PATH):
            return drs_error(exc.status_code, str(exc.detail))
        code = "not_found" if exc.status_code == 404 else "http_error"
        return error_response(exc.status_code, code, str(exc.detail))
