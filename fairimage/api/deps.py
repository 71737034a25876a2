"""Shared dependencies: the repository, the renderer and the caller, injected so no route can forget them."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from fairimage.model.errors import FairimageError, UnauthorizedError
from fairimage.model.policy import ANONYMOUS, Principal
from fairimage.services import accounts
from fairimage.services.repository import Repository
from fairimage.services.tiles import Renderer


def get_repository(request: Request) -> Repository:
    repository: Repository = request.app.state.repository
    return repository


def get_renderer(request: Request) -> Renderer:
    renderer: Renderer = request.app.state.renderer
    return renderer


def get_principal(request: Request) -> Principal:
    """The caller: the user behind ``Authorization: Bearer TOKEN``, else anonymous. A bad token is a 401,
    never a silent fall back to anonymous (a client would think the data had vanished)."""
    header = request.headers.get("authorization")
    if header is None:
        return ANONYMOUS
    kind, _, secret = header.partition(" ")
    if kind.lower() != "bearer" or not secret.strip():
        raise UnauthorizedError(
            "Authorization: use 'Bearer TOKEN' with a token from 'fairimage token create'"
        )
    try:
        return accounts.principal_for_token(get_repository(request), secret.strip())
    except FairimageError as exc:
        raise UnauthorizedError(exc.message) from None


RepositoryDep = Annotated[Repository, Depends(get_repository)]
RendererDep = Annotated[Renderer, Depends(get_renderer)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
