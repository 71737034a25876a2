"""Sign-in with an OpenID Connect provider, for browsers: the sign-in page's "Sign in with ..." button
starts it here, the provider sends the browser back to the callback, which sets the same session cookie as
a password sign-in. A failure is the sign-in page again, with one line saying what went wrong and what to
do (400 for an answer that does not hold up, 502/503 for a provider that is misconfigured or down)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from fairimage.api.access_pages import local_path, login_form, set_session_cookie
from fairimage.api.deps import OidcDep, OriginDep, RepositoryDep
from fairimage.api.pages import not_found_page
from fairimage.model.errors import FairimageError
from fairimage.services.governance import oidc

router = APIRouter(include_in_schema=False)
PENDING_COOKIE = "fairimage_oidc"  # the secret of the sign-in this browser began
PENDING_PATH = "/auth/oidc"


@router.get("/auth/oidc/login", response_class=HTMLResponse)
async def oidc_login(
    request: Request, repository: RepositoryDep, provider: OidcDep, next: str = "/"
) -> Response:
    """To the provider's sign-in page, with a new state, nonce and PKCE challenge."""
    if provider is None:
        return not_found_page(request, "Sign-in with an identity provider is not set up on this repository.")
    redirect_uri = str(request.url_for("oidc_callback"))
    try:
        pending = await run_in_threadpool(
            oidc.begin_sign_in, repository, provider, redirect_uri, local_path(next)
        )
    except FairimageError as exc:
        return login_form(request, next, exc.message, status=exc.http_status)
    response = RedirectResponse(pending.url, status_code=302)
    response.set_cookie(
        PENDING_COOKIE,
        pending.secret,
        max_age=oidc.PENDING_MINUTES * 60,
        path=PENDING_PATH,
        httponly=True,
        samesite="lax",  # sent on the provider's top-level redirect back, not on cross-site requests
        secure=request.url.scheme == "https",
    )
    return response


@router.get("/auth/oidc/callback", response_class=HTMLResponse, name="oidc_callback")
async def oidc_callback(
    request: Request,
    repository: RepositoryDep,
    provider: OidcDep,
    origin: OriginDep,
    state: str | None = None,
    code: str | None = None,
    error: str | None = None,
    iss: str | None = None,
) -> Response:
    """The provider's answer: a web session for the user it names, then where they were going."""
    if provider is None:
        return not_found_page(request, "Sign-in with an identity provider is not set up on this repository.")
    callback = oidc.Callback(state=state, code=code, error=error, issuer=iss)
    secret = request.cookies.get(PENDING_COOKIE)
    try:
        signed_in = await run_in_threadpool(
            oidc.finish_sign_in, repository, provider, secret, callback, origin
        )
    except FairimageError as exc:
        response: Response = login_form(request, "/", exc.message, status=exc.http_status)
    else:
        response = RedirectResponse(local_path(signed_in.next_path), status_code=303)
        set_session_cookie(request, response, signed_in.web_session)
    response.delete_cookie(PENDING_COOKIE, path=PENDING_PATH)
    return response
