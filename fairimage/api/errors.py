"""model.errors mapped to HTTP once: a JSON body {"error": {"code", "message"}} with the class's status."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from fairimage.model.errors import FairimageError


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def register_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(FairimageError)
    async def _fairimage_error(request: Request, exc: FairimageError) -> JSONResponse:
        return error_response(exc.http_status, exc.code, exc.message)
