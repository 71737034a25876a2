"""The API tokens page: a signed-in person (a local account or one from an identity provider, who has no
password to give a command line) makes tokens for scripts and zarr clients, sees theirs and revokes them.
Forms post with the session's CSRF token; each handler calls one service function."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from fairimage.api.deps import PrincipalDep, RepositoryDep
from fairimage.api.pages import templates
from fairimage.model.errors import FairimageError
from fairimage.model.governance.policy import Principal, Role, Scope, parse_scope
from fairimage.services.governance import accounts
from fairimage.services.repository import Repository

router = APIRouter(include_in_schema=False)
MAX_DAYS = 366


@router.get("/tokens", response_class=HTMLResponse)
def tokens_page(request: Request, repository: RepositoryDep, principal: PrincipalDep) -> Response:
    if principal.is_anonymous or principal.user_id is None:
        return RedirectResponse("/login?next=/tokens", status_code=303)
    return _page(request, repository, principal)


@router.post("/tokens", response_class=HTMLResponse)
def create(
    request: Request,
    repository: RepositoryDep,
    principal: PrincipalDep,
    scope: Annotated[str, Form(max_length=10)] = "read",
    days: Annotated[int, Form(ge=1, le=MAX_DAYS)] = 90,
    note: Annotated[str, Form(max_length=255)] = "",
) -> Response:
    """A new token of the signed-in person's; its secret is shown on the page once."""
    try:
        made = accounts.create_token(
            repository, principal, principal.name, parse_scope(scope), timedelta(days=days), note
        )
    except FairimageError as exc:
        return _page(request, repository, principal, error=exc.message, status=exc.http_status)
    return _page(request, repository, principal, secret=made.secret, status=201)


@router.post("/tokens/{token_id}/revoke")
def revoke(token_id: str, repository: RepositoryDep, principal: PrincipalDep) -> Response:
    accounts.revoke_token(repository, principal, token_id)
    return RedirectResponse("/tokens", status_code=303)


def _may_give(principal: Principal, scope: Scope) -> bool:
    """Scopes the page offers: those the session has, admin to admins only (the service checks again)."""
    return principal.scope.includes(scope) and (scope is not Scope.ADMIN or principal.role is Role.ADMIN)


def _page(
    request: Request,
    repository: Repository,
    principal: Principal,
    secret: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    context = {
        "tokens": accounts.list_tokens(repository, principal, principal.name),
        "secret": secret,
        "error": error,
        "scopes": [scope.value for scope in Scope if _may_give(principal, scope)],
        "max_days": MAX_DAYS,
    }
    return templates.TemplateResponse(request, "tokens.html", context, status_code=status)
