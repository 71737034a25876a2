"""The application factory: one app per repository, no module-level state."""

from __future__ import annotations

import functools
import gc
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

from fairimage import __version__, web
from fairimage.api import (
    access,
    access_pages,
    admin,
    analyses,
    annotating,
    correlative,
    datasets,
    drs,
    federation,
    images,
    jobs,
    metadata,
    models,
    oai,
    oidc,
    ontologies,
    pages,
    plates,
    qc,
    search,
    sharing,
    studies,
    tiles,
    token_pages,
    versions,
    zarr,
)
from fairimage.api.errors import register_error_handlers
from fairimage.api.security import BodyLimit, SecurityHeaders
from fairimage.services.federation.schedule import federation_schedule
from fairimage.services.governance.fixity import fixity_schedule
from fairimage.services.governance.oidc_provider import OidcProvider
from fairimage.services.governance.sessions import LoginThrottle
from fairimage.services.jobs import JobRunner
from fairimage.services.recovery import open_repository
from fairimage.services.viewing.tiles import Renderer
from fairimage.settings import Settings

# `fairimage serve --workers N` hands its resolved settings to each worker process in this variable.
SETTINGS_VARIABLE = "FAIRIMAGE_SERVE_SETTINGS"


# Any origin may read: viewers such as vizarr and viv run on other hosts. Range must be allowed and
# Content-Range exposed, or browsers' zarr clients cannot read chunks.
CORS: dict[str, Any] = {
    "allow_origins": ["*"],
    "allow_methods": ["GET", "HEAD", "OPTIONS"],
    "allow_headers": ["Range", "If-None-Match", "If-Range", "Content-Type"],
    "expose_headers": ["Content-Range", "Content-Length", "ETag", "Accept-Ranges"],
    "max_age": 3600,
}


class FairimageAPI(FastAPI):
    """FastAPI with the hot paths (``zarr.ZarrKeys``, ``tiles.TileRequests``; ``api.hot``) in front of its
    middleware stack: a chunk or a small tile whose caller and access decision are known from memory is
    answered there, with the headers of the same CORS and security-header middlewares as everything else;
    every other request goes through FastAPI."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        routes = partial(FastAPI.__call__, self)
        self._hot_path = zarr.ZarrKeys(tiles.TileRequests(routes, _middleware_headers), _middleware_headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = self
        if scope["type"] == "http" and scope["path"].startswith(SHARED_PREFIX):
            scope = _shared_path(scope)
        await self._hot_path(scope, receive, send)


SHARED_PREFIX = "/s/"


def _shared_path(scope: Scope) -> Scope:
    """``/s/SECRET/zarr/...`` (a share link's address for clients that cannot send headers: zarr-python,
    napari, ome-zarr-py given a URL) as ``/zarr/...`` with the link's secret as its bearer token.
    ``/s/SECRET`` itself is the page that opens the link in a browser (api/sharing.py), left as it is."""
    secret, slash, rest = scope["path"][len(SHARED_PREFIX) :].partition("/")
    if not slash or not rest or not secret:
        return scope
    headers = [(name, value) for name, value in scope["headers"] if name != b"authorization"]
    headers.append((b"authorization", b"Bearer " + secret.encode("latin-1")))
    path = "/" + rest
    return {**scope, "path": path, "raw_path": path.encode(), "headers": headers}


@functools.cache
def _middleware_headers(cross_origin: bool) -> list[tuple[bytes, bytes]]:
    """What CORSMiddleware (with ``CORS``) and SecurityHeaders add to a response that is not HTML, for a
    request with or without an Origin header: the hot path adds them itself (tests/test_http.py checks that
    its answers and the route's are the same). Found once by passing a response through the two (whose
    calls never wait on anything), so that what a Starlette release adds or stops adding follows here."""
    started: list[Message] = []

    async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"x/y")]})

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def keep(message: Message) -> None:
        started.append(message)

    origin = [(b"origin", b"https://viewer.example.org")] if cross_origin else []
    scope = {"type": "http", "method": "GET", "path": "/zarr/", "query_string": b"", "headers": origin}
    call = SecurityHeaders(CORSMiddleware(endpoint, **CORS))(scope, receive, keep)
    try:
        call.send(None)
    except StopIteration:
        pass
    else:
        call.close()
        raise RuntimeError("the middlewares waited on something; the hot path cannot copy their headers")
    return [(name, value) for name, value in started[0]["headers"] if name != b"content-type"]


def app_from_environment() -> FastAPI:
    """The app of one of the server's processes (Granian's factory), from ``SETTINGS_VARIABLE``."""
    return create_app(Settings.model_validate_json(os.environ[SETTINGS_VARIABLE]), server_process=True)


def create_app(settings: Settings, server_process: bool = False) -> FastAPI:
    """The app; ``server_process``: it is the one app of the process it runs in (``fairimage serve``), which
    may then keep what is alive at its start out of the garbage collector's sight."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.repository = open_repository(settings)
        app.state.renderer = Renderer(app.state.repository)
        app.state.throttle = LoginThrottle()
        app.state.oidc = OidcProvider(settings.oidc) if settings.oidc is not None else None
        app.state.jobs = JobRunner(app.state.repository)
        schedules = [fixity_schedule(app.state.repository)] if settings.fixity_hours > 0 else []
        if settings.federation_hours > 0:
            schedules.append(federation_schedule(app.state.repository))
        if server_process:
            # What is alive now (the modules, the app) lives as long as the process: out of the collector's
            # sight, a full collection takes milliseconds rather than the 150-230 ms that stalled every
            # request waiting on that worker (benchmarks/README.md, serving under load).
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            for schedule in schedules:
                schedule.stop()
            app.state.jobs.close()
            app.state.repository.close()

    app = FairimageAPI(
        title="fairimage",
        version=__version__,
        lifespan=lifespan,
        description="FAIR image repository node: studies, images and their OME-Zarr data.",
    )
    app.add_middleware(CORSMiddleware, **CORS)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(BodyLimit)
    register_error_handlers(app)
    # The OME-Zarr keys and tiles come first: they are most of the requests, and routes match in order.
    for module in (
        zarr,
        tiles,
        studies,
        images,
        plates,
        qc,
        jobs,
        versions,
        metadata,
        access,
        admin,
        annotating,
        ontologies,
        oai,
        federation,
        analyses,
        search,
        drs,
        pages,
        access_pages,
        oidc,
        token_pages,
        sharing,
        datasets,
        models,
        correlative,
    ):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=web.STATIC), name="static")
    return app
