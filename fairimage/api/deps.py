"""Shared dependencies: the repository and the caller, injected so no route can forget them."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from fairimage.services.access import ANONYMOUS, Principal
from fairimage.services.repository import Repository
from fairimage.services.tiles import Renderer


def get_repository(request: Request) -> Repository:
    repository: Repository = request.app.state.repository
    return repository


def get_renderer(request: Request) -> Renderer:
    renderer: Renderer = request.app.state.renderer
    return renderer


def get_principal(request: Request) -> Principal:
    return ANONYMOUS  # accounts and tokens arrive with the governance issue


RepositoryDep = Annotated[Repository, Depends(get_repository)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
RendererDep = Annotated[Renderer, Depends(get_renderer)]
