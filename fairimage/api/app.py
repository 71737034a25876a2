"""The application factory: one app per repository, no module-level state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from fairimage import __version__, web
from fairimage.api import (
    access,
    access_pages,
    admin,
    annotating,
    drs,
    images,
    metadata,
    oai,
    ontologies,
    pages,
    plates,
    qc,
    search,
    studies,
    tiles,
    versions,
    zarr,
)
from fairimage.api.errors import register_error_handlers
from fairimage.api.security import BodyLimit, SecurityHeaders
from fairimage.services.governance.fixity import FixitySchedule
from fairimage.services.governance.sessions import LoginThrottle
from fairimage.services.recovery import open_repository
from fairimage.services.viewing.tiles import Renderer
from fairimage.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.repository = open_repository(settings)
        app.state.renderer = Renderer(app.state.repository)
        app.state.throttle = LoginThrottle()
        schedule = FixitySchedule(app.state.repository) if settings.fixity_hours > 0 else None
        try:
            yield
        finally:
            if schedule is not None:
                schedule.stop()
            app.state.repository.close()

    app = FastAPI(
        title="fairimage",
        version=__version__,
        lifespan=lifespan,
        description="FAIR image repository node: studies, images and their OME-Zarr data.",
    )
    # Any origin may read: viewers such as vizarr and viv run on other hosts. Range must be allowed and
    # Content-Range exposed, or browsers' zarr clients cannot read chunks.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["GET", "HEAD", "OPTIONS"],
        allow_headers=["Range", "If-None-Match", "If-Range", "Content-Type"],
        expose_headers=["Content-Range", "Content-Length", "ETag", "Accept-Ranges"],
        max_age=3600,
    )
    app.add_middleware(SecurityHeaders)
    app.add_middleware(BodyLimit)
    register_error_handlers(app)
    for module in (
        studies,
        images,
        plates,
        qc,
        versions,
        metadata,
        access,
        admin,
        annotating,
        ontologies,
        oai,
        search,
        drs,
        zarr,
        tiles,
        pages,
        access_pages,
    ):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=web.STATIC), name="static")
    return app
