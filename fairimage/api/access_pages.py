"""Pages for people: sign in and out, apply for access to a restricted study, see one's requests and (owners,
data stewards) decide on them. Forms post with the session's CSRF token; each handler calls one service."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from fairimage import ontology
from fairimage.api.deps import (
    SESSION_COOKIE,
    OriginDep,
    PrincipalDep,
    RepositoryDep,
    ThrottleDep,
    oidc_of,
    signed_in,
)
from fairimage.api.pages import render_study, templates
from fairimage.model.errors import FairimageError, ForbiddenError
from fairimage.model.governance.duo import ResearchPurpose
from fairimage.model.governance.policy import RequestState
from fairimage.services.governance import access_requests, sessions

router = APIRouter(include_in_schema=False)
LOGIN_CSRF_COOKIE = "fairimage_login_csrf"


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/") -> HTMLResponse:
    return login_form(request, next, error="")


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    repository: RepositoryDep,
    throttle: ThrottleDep,
    origin: OriginDep,
    name: Annotated[str, Form(max_length=255)],
    password: Annotated[str, Form(max_length=1024)],
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not secrets.compare_digest(expected, csrf_token):
        return login_form(request, next, "The form expired; please sign in again.", status=403)
    try:
        web_session = sessions.sign_in(repository, throttle, name.strip(), password, origin)
    except ForbiddenError as exc:
        return login_form(request, next, exc.message, status=exc.http_status)
    response = RedirectResponse(local_path(next), status_code=303)
    set_session_cookie(request, response, web_session)
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    return response


def set_session_cookie(request: Request, response: Response, web_session: sessions.WebSession) -> None:
    """The signed-in browser's cookie, however it signed in (a password, an identity provider)."""
    response.set_cookie(
        SESSION_COOKIE,
        web_session.secret,
        max_age=sessions.SESSION_HOURS * 3600,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


@router.post("/logout")
def logout(request: Request, repository: RepositoryDep, principal: PrincipalDep) -> Response:
    web_session = signed_in(request)
    if web_session is not None:
        sessions.sign_out(repository, web_session.secret, principal.origin)
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.post("/studies/{study_id}/access-requests")
def apply(
    study_id: str,
    request: Request,
    repository: RepositoryDep,
    principal: PrincipalDep,
    title: Annotated[str, Form(max_length=200)],
    use: Annotated[str, Form()] = "HMB",
    description: Annotated[str, Form(max_length=5000)] = "",
    diseases: Annotated[str, Form(max_length=500)] = "",
    institution: Annotated[str, Form(max_length=255)] = "",
    ethics_approval: Annotated[str, Form(max_length=255)] = "",
    commercial: Annotated[bool, Form()] = False,
    for_profit_organisation: Annotated[bool, Form()] = False,
    methods_development: Annotated[bool, Form()] = False,
    accepts: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """The study page's application form; a refusal is shown on the study page, with its reasons."""
    try:
        purpose = ResearchPurpose(
            title=title,
            description=description,
            use=use,
            diseases=tuple(diseases.replace(",", " ").split()),
            institution=institution,
            ethics_approval=ethics_approval,
            commercial=commercial,
            for_profit_organisation=for_profit_organisation,
            methods_development=methods_development,
            accepts=tuple(accepts or ()),
        )
        access_requests.submit(repository, principal, study_id, purpose)
    except (FairimageError, ValueError) as exc:
        message = exc.message if isinstance(exc, FairimageError) else str(exc).splitlines()[-1]
        return render_study(request, repository, principal, study_id, application_error=message)
    return RedirectResponse("/access-requests", status_code=303)


@router.get("/access-requests", response_class=HTMLResponse)
def requests_page(request: Request, repository: RepositoryDep, principal: PrincipalDep) -> Response:
    if principal.is_anonymous:
        return RedirectResponse("/login?next=/access-requests", status_code=303)
    found = access_requests.list_requests(repository, principal)
    mine = [r for r in found if r.applicant == principal.name]
    to_decide = [r for r in found if r.applicant != principal.name]
    context = {
        "mine": mine,
        "to_decide": to_decide,
        "waiting": RequestState.SUBMITTED,
        "duo": ontology.duo(),
    }
    return templates.TemplateResponse(request, "access_requests.html", context)


@router.post("/access-requests/{request_id}/{action}")
def decide(
    request_id: str,
    action: str,
    repository: RepositoryDep,
    principal: PrincipalDep,
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Approve, deny, revoke or withdraw, from the requests page."""
    if action == "approve":
        access_requests.approve(repository, principal, request_id, None, note)
    elif action == "deny":
        access_requests.deny(repository, principal, request_id, note)
    elif action == "revoke":
        access_requests.revoke(repository, principal, request_id, note)
    elif action == "withdraw":
        access_requests.withdraw(repository, principal, request_id)
    else:
        return Response(status_code=404)
    return RedirectResponse("/access-requests", status_code=303)


def login_form(request: Request, next: str, error: str, status: int = 200) -> HTMLResponse:
    """The sign-in page (with an error, when a sign-in failed): the password form, and the identity
    provider's button where one is configured."""
    token = secrets.token_urlsafe(24)
    provider = oidc_of(request)
    context = {
        "csrf_token": token,
        "next": local_path(next),
        "error": error,
        "oidc_name": provider.settings.name if provider is not None else None,
    }
    response = templates.TemplateResponse(request, "login.html", context, status_code=status)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", max_age=3600)
    return response


def local_path(target: str) -> str:
    """Only paths on this site are followed after sign-in (no open redirect)."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"
