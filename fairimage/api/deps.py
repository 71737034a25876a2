"""Shared dependencies: the repository, the renderer and the caller, injected so no route can forget them."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Annotated

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool

from fairimage.model.errors import FairimageError, ForbiddenError, UnauthorizedError
from fairimage.model.governance.policy import ANONYMOUS, Principal
from fairimage.services.governance import accounts, sessions
from fairimage.services.governance.oidc_provider import OidcProvider
from fairimage.services.governance.sessions import LoginThrottle, WebSession
from fairimage.services.jobs import JobRunner
from fairimage.services.repository import Repository
from fairimage.services.sharing import links
from fairimage.services.viewing.tiles import Renderer

SESSION_COOKIE = "fairimage_session"
SHARE_COOKIE = "fairimage_share"  # a share link opened in this browser (read-only; honoured for GET/HEAD)
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


# The dependencies are ``async def`` even where they do not await: FastAPI runs a plain ``def`` dependency
# in a worker thread, and a thread hop per request for an attribute read costs more than the request.
async def get_repository(request: Request) -> Repository:
    return repository_of(request)


def repository_of(request: Request) -> Repository:
    repository: Repository = request.app.state.repository
    return repository


async def get_renderer(request: Request) -> Renderer:
    renderer: Renderer = request.app.state.renderer
    return renderer


async def get_principal(request: Request) -> Principal:
    """The caller (see ``_caller``), with the address the request came from."""
    principal = await _caller(request)
    return replace(principal, origin=origin_of(request))


def known_caller(request: Request) -> Principal | None:
    """The caller, with its address, when it is known without waiting on the catalog: anonymous (no token,
    no session cookie) or the holder of a token used in the last moments; else None (``get_principal``
    finds out). UnauthorizedError for a token recently found bad."""
    header = request.headers.get("authorization")
    if header is not None:
        kind, _, secret = header.partition(" ")
        if kind.lower() != "bearer" or not _recent(request, secret.strip()):
            return None
        return replace(_bearer(request, header), origin=origin_of(request))
    if request.cookies.get(SESSION_COOKIE):
        return None
    shared = request.cookies.get(SHARE_COOKIE)
    if shared and request.method in SAFE_METHODS:
        if not links.link_is_recent(repository_of(request), shared, origin_of(request)):
            return None
        return replace(_shared(request, shared), origin=origin_of(request))
    return replace(ANONYMOUS, origin=origin_of(request))


async def _caller(request: Request) -> Principal:
    """The caller: the user behind ``Authorization: Bearer TOKEN``, or behind the session cookie of a
    signed-in browser, else anonymous. A bad token is a 401, never a silent fall back to anonymous (a
    client would think the data had vanished). A state-changing request made with the cookie must carry
    the session's CSRF token (header ``X-CSRF-Token`` or form field ``csrf_token``)."""
    header = request.headers.get("authorization")
    if header is not None:
        if _recent(request, header.partition(" ")[2].strip()):
            return _bearer(request, header)  # from memory: no thread hop for each chunk a client reads
        return await run_in_threadpool(_bearer, request, header)
    secret = request.cookies.get(SESSION_COOKIE)
    if not secret:
        shared = request.cookies.get(SHARE_COOKIE)
        if shared and request.method in SAFE_METHODS:
            return await run_in_threadpool(_shared, request, shared)
        return ANONYMOUS
    try:
        web_session = await run_in_threadpool(sessions.session_for, repository_of(request), secret)
    except UnauthorizedError:
        if request.method in SAFE_METHODS:
            return ANONYMOUS  # an ended session browses as anonymous; the page offers to sign in
        raise
    if request.method not in SAFE_METHODS:
        token = request.headers.get(CSRF_HEADER)
        if token is None and request.headers.get("content-type", "").startswith(FORM_TYPES):
            field = (await request.form()).get("csrf_token")
            token = field if isinstance(field, str) else None
        if not sessions.csrf_matches(web_session, token):
            raise ForbiddenError(
                "the page's security token is missing or stale; reload the page and try again"
            )
    request.state.web_session = web_session
    return web_session.principal


def signed_in(request: Request) -> WebSession | None:
    """The browser's session, once ``get_principal`` has run for this request."""
    web_session: WebSession | None = getattr(request.state, "web_session", None)
    return web_session


def _bearer(request: Request, header: str) -> Principal:
    kind, _, secret = header.partition(" ")
    if kind.lower() != "bearer" or not secret.strip():
        raise UnauthorizedError(
            "Authorization: use 'Bearer TOKEN' with a token from 'fairimage token create'"
        )
    secret = secret.strip()
    try:
        if links.is_share_secret(secret):
            return links.principal_for_link(repository_of(request), secret, origin_of(request))
        return accounts.principal_for_token(repository_of(request), secret)
    except FairimageError as exc:
        raise UnauthorizedError(exc.message) from None


def _shared(request: Request, secret: str) -> Principal:
    """The holder of the share link this browser opened; anonymous once it no longer works (its pages
    are then 404, as for anyone else)."""
    try:
        return links.principal_for_link(repository_of(request), secret, origin_of(request))
    except FairimageError:
        return ANONYMOUS


def _recent(request: Request, secret: str) -> bool:
    """Whether the holder of a bearer secret (a token or a share link) is known from memory."""
    repository = repository_of(request)
    return accounts.token_is_recent(repository, secret) or links.link_is_recent(
        repository, secret, origin_of(request)
    )


async def get_throttle(request: Request) -> LoginThrottle:
    throttle: LoginThrottle = request.app.state.throttle
    return throttle


def oidc_of(request: Request) -> OidcProvider | None:
    """The OpenID Connect provider people may sign in with, if one is configured ([oidc])."""
    provider: OidcProvider | None = request.app.state.oidc
    return provider


async def get_oidc(request: Request) -> OidcProvider | None:
    return oidc_of(request)


async def get_jobs(request: Request) -> JobRunner:
    jobs: JobRunner = request.app.state.jobs
    return jobs


async def get_origin(request: Request) -> str:
    return origin_of(request)


def origin_of(request: Request) -> str:
    """Where a request came from, for the audit log: the client's address."""
    return request.client.host if request.client is not None else ""


RepositoryDep = Annotated[Repository, Depends(get_repository)]
RendererDep = Annotated[Renderer, Depends(get_renderer)]
JobsDep = Annotated[JobRunner, Depends(get_jobs)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
OriginDep = Annotated[str, Depends(get_origin)]
ThrottleDep = Annotated[LoginThrottle, Depends(get_throttle)]
OidcDep = Annotated[OidcProvider | None, Depends(get_oidc)]


async def refuse_body(request: Request) -> None:
    """For endpoints that take no body: one with fields is refused as strict bodies refuse unknown fields."""
    raw = (await request.body()).strip()
    if not raw:
        return
    try:
        sent = json.loads(raw)
    except ValueError:
        sent = raw.decode(errors="replace")
    if sent in ({}, None):
        return
    fields = list(sent) if isinstance(sent, dict) else [""]
    raise RequestValidationError(
        [
            {
                "type": "extra_forbidden",
                "loc": ("body", field) if field else ("body",),
                "msg": "this endpoint takes no body",
                "input": sent,
            }
            for field in fields
        ]
    )


NoBody = Depends(refuse_body)
