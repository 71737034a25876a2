"""Sign-in with an OpenID Connect provider (institutional, ORCID, Keycloak): the authorization code flow with
PKCE, beside local accounts, ending in the same web session a password sign-in makes.

``begin_sign_in`` keeps the sign-in's state, nonce and PKCE verifier in the catalog under the sha256 of a
random secret that goes to the browser in a cookie, so the callback is bound to the browser that began it
(and works whichever server process it reaches); ``finish_sign_in`` takes that record once (a second callback
with it is a replay and is refused), checks the state, exchanges the code and validates the ID token
(``oidc_provider``). People are known by (issuer, subject), never by name or email: a first sign-in makes a
user with the configured default role and a name of its own (the provider's user name, or that name
@provider-host when a user has it already, so no local account is ever taken over); later sign-ins find the
same user. A disabled user cannot sign in this way either. Every refusal is in the audit log.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from fairimage.catalog.queries import aware
from fairimage.catalog.tables import OidcSignInRow, UserRow
from fairimage.model.curation.checks import normalise_orcid
from fairimage.model.errors import (
    FairimageError,
    ForbiddenError,
    InvalidInputError,
    ProviderError,
    ProviderUnavailableError,
)
from fairimage.model.governance.policy import Principal
from fairimage.model.study import new_id
from fairimage.services.governance import accounts, audit, sessions
from fairimage.services.governance.oidc_provider import Identity, OidcProvider
from fairimage.services.governance.sessions import WebSession
from fairimage.services.repository import Repository

PENDING_MINUTES = 10  # from the sign-in button to the provider's answer
# What a provider may answer instead of a code (OpenID Connect Core 1.0, 3.1.2.6; RFC 6749, 4.1.2.1).
_DECLINED = {"access_denied", "login_required", "consent_required", "interaction_required"}
_DECLINED |= {"account_selection_required"}
_UNAVAILABLE = {"server_error", "temporarily_unavailable"}


@dataclass(frozen=True)
class PendingSignIn:
    """A sign-in begun: ``secret`` for the browser's cookie (never stored), ``url`` the provider's page."""

    secret: str
    url: str


@dataclass(frozen=True)
class Callback:
    """The query of the provider's redirect back to us."""

    state: str | None = None
    code: str | None = None
    error: str | None = None
    issuer: str | None = None  # RFC 9207's iss parameter, where the provider sends it


@dataclass(frozen=True)
class SignedIn:
    web_session: WebSession
    next_path: str  # where the person was going when they chose to sign in


def begin_sign_in(
    repository: Repository, provider: OidcProvider, redirect_uri: str, next_path: str = "/"
) -> PendingSignIn:
    """Start a sign-in: the provider's authorization URL, and the secret of the record kept for its
    callback. ProviderError (or ProviderUnavailableError) when the provider's discovery document fails."""
    authorization = provider.authorization(redirect_uri)
    secret, now = secrets.token_urlsafe(32), datetime.now(UTC)
    with repository.transaction() as session:
        session.execute(delete(OidcSignInRow).where(OidcSignInRow.expires_at < now))
        session.add(
            OidcSignInRow(
                id=_digest(secret),
                state=authorization.state,
                nonce=authorization.nonce,
                code_verifier=authorization.code_verifier,
                redirect_uri=redirect_uri,
                next_path=next_path if len(next_path) <= 1024 else "/",
                created_at=now,
                expires_at=now + timedelta(minutes=PENDING_MINUTES),
            )
        )
    return PendingSignIn(secret, authorization.url)


def finish_sign_in(
    repository: Repository, provider: OidcProvider, secret: str | None, callback: Callback, origin: str = ""
) -> SignedIn:
    """Finish a sign-in from the provider's callback and the browser's cookie secret: a web session for the
    user it names. InvalidInputError for a callback that does not hold up (no or another sign-in, a replay,
    the provider's refusal, a bad ID token), ForbiddenError for a disabled user, ProviderError for a
    misconfigured provider; each recorded in the audit log."""
    try:
        pending = _take_pending(repository, secret)
        _check_callback(provider, pending, callback)
        assert callback.code is not None
        identity = provider.identify(
            callback.code, pending.nonce, pending.code_verifier, pending.redirect_uri
        )
        principal, details = _principal_for(repository, provider, identity, origin)
    except FairimageError as exc:
        with repository.transaction() as session:
            audit.record(
                session,
                "anonymous",
                "session.sign_in",
                f"oidc:{provider.issuer}",
                decision="denied",
                origin=origin,
                method="oidc",
                reason=exc.message,
            )
        raise
    web_session = sessions.open_session(repository, principal, origin, **details)
    return SignedIn(web_session, pending.next_path)


def _take_pending(repository: Repository, secret: str | None) -> OidcSignInRow:
    """The sign-in this browser began, marked used in the same statement that finds it unused (so two
    callbacks racing with one record cannot both pass)."""
    if not secret:
        raise InvalidInputError(
            "this browser has no sign-in in progress (its cookie is missing: cookies blocked, or another "
            "browser began it); start again from the sign-in page"
        )
    digest, now = _digest(secret), datetime.now(UTC)
    with repository.transaction() as session:
        taken = session.scalar(
            update(OidcSignInRow)
            .where(OidcSignInRow.id == digest, OidcSignInRow.used_at.is_(None))
            .values(used_at=now)
            .returning(OidcSignInRow.id)
        )
        row = session.get(OidcSignInRow, digest)
        if row is None or (aware(row.expires_at) or now) <= now:
            raise InvalidInputError(
                f"this sign-in has expired (it must finish within {PENDING_MINUTES} minutes) or was never "
                "begun here; start again from the sign-in page"
            )
        if taken is None:
            raise InvalidInputError(
                "this sign-in answer was used already (a replayed callback); start again from the sign-in "
                "page"
            )
        session.expunge(row)
        return row


def _check_callback(provider: OidcProvider, pending: OidcSignInRow, callback: Callback) -> None:
    if callback.state is None or not secrets.compare_digest(callback.state.encode(), pending.state.encode()):
        raise InvalidInputError(
            "the sign-in answer does not belong to the sign-in this browser began (state mismatch); "
            "start again from the sign-in page"
        )
    provider.check_response_issuer(callback.issuer)
    if callback.error is not None:
        raise _provider_declined(callback.error)
    if not callback.code:
        raise InvalidInputError("the provider's answer carries no code and no error; start again")


def _provider_declined(error: str) -> FairimageError:
    code = error if re.fullmatch(r"[a-z_]{1,64}", error) else "unknown error"  # never echo other text
    if code in _DECLINED:
        return InvalidInputError(
            f"the provider did not sign you in ({code}: cancelled, or not allowed there); sign in again, "
            "or with a local account"
        )
    if code in _UNAVAILABLE:
        return ProviderUnavailableError(f"the provider could not sign you in now ({code}); try again later")
    if code == "invalid_scope":
        return ProviderError(
            f"the provider refused the scopes asked for ({code}); check oidc scopes in fairimage.toml"
        )
    return ProviderError(
        f"the provider refused the sign-in request ({code}): check the client registered there (its "
        "redirect URI must be this server's /auth/oidc/callback, with the code flow and PKCE allowed)"
    )


def _principal_for(
    repository: Repository, provider: OidcProvider, identity: Identity, origin: str
) -> tuple[Principal, dict[str, str]]:
    """The user the identity maps to (made at their first sign-in) as a principal, and what the audit log
    records of how they signed in."""
    settings = provider.settings
    orcid, details = _orcid(identity.claims.get(settings.orcid_claim))
    with repository.transaction() as session:
        row = session.scalar(
            select(UserRow).where(
                UserRow.oidc_issuer == identity.issuer, UserRow.oidc_subject == identity.subject
            )
        )
        if row is None:
            row = _new_user(session, identity, settings.default_role.value, orcid, origin)
        elif row.disabled_at is not None:
            raise ForbiddenError("this account is disabled; ask the repository's administrators")
        if orcid is not None and row.orcid != orcid:
            row.orcid = orcid
        email = identity.claims.get("email")
        if isinstance(email, str) and email and identity.claims.get("email_verified", True) is not False:
            row.email = email[:255]
        session.flush()
        principal = accounts.principal_of(session, row, origin)
    return principal, {"method": "oidc", "issuer": identity.issuer, "subject": identity.subject, **details}


def _new_user(session: Session, identity: Identity, role: str, orcid: str | None, origin: str) -> UserRow:
    name = _free_name(session, identity)
    email = identity.claims.get("email")
    row = UserRow(
        id=new_id("user"),
        name=name,
        email=email[:255] if isinstance(email, str) else "",
        role=role,
        oidc_issuer=identity.issuer,
        oidc_subject=identity.subject,
        orcid=orcid,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        name,
        "user.add",
        f"user:{name}",
        origin=origin,
        role=role,
        method="oidc",
        issuer=identity.issuer,
        subject=identity.subject,
    )
    return row


def _free_name(session: Session, identity: Identity) -> str:
    """The provider's user name (else the email, the full name, the subject) in safe characters, made
    unique: a name held by a user already (a local account, or someone from another provider) gets
    @provider-host, then a number."""
    claims = identity.claims
    base = next(
        (
            " ".join(str(claims[key]).split())[:200]
            for key in ("preferred_username", "email", "name")
            if isinstance(claims.get(key), str) and claims[key].strip()
        ),
        identity.subject[:200],
    )
    # Only letters, digits and . _ - @: a name a provider chose never reads as "operator:…" or "share:…",
    # which the audit log and share links use for who acted.
    base = re.sub(r"[^\w.@-]+", "_", base).strip("_") or "user"
    host = urlsplit(identity.issuer).hostname or "provider"
    candidates = [base, f"{base}@{host}", *(f"{base}@{host}-{n}" for n in range(2, 100))]
    for name in candidates:
        if session.scalar(select(UserRow.id).where(UserRow.name == name)) is None:
            return name
    return f"{base}@{host}-{secrets.token_hex(4)}"


def _orcid(value: Any) -> tuple[str | None, dict[str, str]]:
    """The ORCID iD in a claim if its check digit is right; a wrong one is not kept (and is noted)."""
    if not isinstance(value, str) or not value.strip():
        return None, {}
    orcid = normalise_orcid(value)
    if orcid is None:
        return None, {"orcid_refused": "not a valid ORCID iD (check digit)"}
    return orcid, {"orcid": orcid}


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
