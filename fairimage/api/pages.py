"""The plain HTML home page: studies and images with links (the full viewer comes later)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from fairimage import __version__
from fairimage.api.deps import PrincipalDep, RepositoryDep
from fairimage.api.schemas import ImageOut
from fairimage.services import images as image_service

templates = Jinja2Templates(directory=Path(__file__).parent.parent / "web" / "templates")
router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, repository: RepositoryDep, principal: PrincipalDep) -> HTMLResponse:
    studies = image_service.list_studies(repository)
    base = str(request.base_url)
    by_study = {
        study.id: [
            ImageOut.of(image, base)
            for image in image_service.list_images(repository, study=study.id, limit=200).items
        ]
        for study in studies
    }
    return templates.TemplateResponse(
        request,
        "home.html",
        {
            "studies": studies,
            "images": by_study,
            "version": __version__,
        },
    )
