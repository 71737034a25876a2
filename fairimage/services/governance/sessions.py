"""Web sign-in: password sessions for browsers, with a CSRF token each, and throttling of failed sign-ins.

The session cookie holds 256 random bits; the catalog keeps only their sha256 (as for API tokens), so a
copy of the catalog signs nobody in. Each session has its own CSRF token, which every state-changing
request made with the cookie must echo (a header or a form field). Failed sign-ins are counted per user
name and per client address; after ``LoginThrottle.limit`` failures in the window, further attempts wait,
longer each time, whatever the password (so guessing stays slow even for a right guess).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from fairimage.catalog.queries import aware
from fairimage.catalog.tables import WebSessionRow
from fairimage.model.errors import ForbiddenError, ThrottledError, UnauthorizedError
from fairimage.model.governance.policy import Principal
from fairimage.model.study import new_id
from fairimage.services.governance import accounts, audit
from fairimage.services.repository import Repository

SESSION_HOURS = 12


@dataclass(frozen=True)
class WebSession:
    secret: str  # for the cookie; never stored
    csrf_token: str
    principal: Principal
    expires_at: datetime


@dataclass
class LoginThrottle:
    """Failed sign-ins per key (a user name, a client address) in a sliding window; kept in the app's
    memory (one process; several server processes each keep their own count)."""

    limit: int = 5
    window_seconds: float = 900.0
    base_delay_seconds: float = 30.0
    _failures: dict[str, list[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, *keys: str) -> None:
        """ThrottledError while any key has had too many recent failures."""
        now = time.monotonic()
        with self._lock:
            wait = max((self._wait(key, now) for key in keys), default=0.0)
        if wait > 0:
            raise ThrottledError(
                f"too many failed sign-ins; try again in {int(wait) + 1} seconds", int(wait) + 1
            )

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in keys:
                recent = [t for t in self._failures.get(key, []) if now - t < self.window_seconds]
                self._failures[key] = [*recent, now]

    def succeeded(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)

    def _wait(self, key: str, now: float) -> float:
        recent = [t for t in self._failures.get(key, []) if now - t < self.window_seconds]
        if len(recent) < self.limit:
            return 0.0
        delay = self.base_delay_seconds * 2 ** (len(recent) - self.limit)  # doubles with each failure
        return max(0.0, recent[-1] + min(delay, self.window_seconds) - now)


def sign_in(
    repository: Repository, throttle: LoginThrottle, name: str, password: str, origin: str = ""
) -> WebSession:
    """A new session for a right name and password; ForbiddenError (the same for a wrong name or a
    wrong password) otherwise, and ThrottledError after too many failures."""
    keys = (f"user:{name.lower()}", f"address:{origin}")
    throttle.check(*keys)
    try:
        principal = accounts.authenticate(repository, name, password)
    except ForbiddenError:
        throttle.failed(*keys)
        with repository.transaction() as session:
            audit.record(session, name, "session.sign_in", f"user:{name}", decision="denied", origin=origin)
        raise
    throttle.succeeded(*keys)
    return open_session(repository, principal, origin)


def open_session(
    repository: Repository, principal: Principal, origin: str = "", **details: str
) -> WebSession:
    """A new web session for a user already known to be who they say (by password, or by an identity
    provider: ``details`` say how, for the audit log)."""
    secret, csrf_token = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    expires = now + timedelta(hours=SESSION_HOURS)
    session_id = new_id("session")
    with repository.transaction() as session:
        session.add(
            WebSessionRow(
                id=session_id,
                secret_sha256=_digest(secret),
                csrf_token=csrf_token,
                user_id=principal.user_id,
                origin=origin[:255],
                created_at=now,
                expires_at=expires,
            )
        )
        audit.record(
            session,
            principal.name,
            "session.sign_in",
            f"user:{principal.name}",
            origin=origin,
            web_session=session_id,
            **details,
        )
    return WebSession(secret, csrf_token, principal, expires)


def session_for(repository: Repository, secret: str) -> WebSession:
    """The session behind a cookie; UnauthorizedError for an unknown, expired or ended one."""
    with repository.reading() as session:
        row = session.scalar(select(WebSessionRow).where(WebSessionRow.secret_sha256 == _digest(secret)))
        expires = aware(row.expires_at) if row is not None else None
        if row is None or row.revoked_at is not None or expires is None or expires <= datetime.now(UTC):
            raise UnauthorizedError("your session has ended; sign in again")
        if row.user.disabled_at is not None:
            raise UnauthorizedError("this account is disabled")
        # a signed-in person acts with their role's full scope, as at the command line
        return WebSession(secret, row.csrf_token, accounts.principal_of(session, row.user), expires)


def csrf_matches(web_session: WebSession, token: str | None) -> bool:
    return token is not None and hmac.compare_digest(web_session.csrf_token, token)


def sign_out(repository: Repository, secret: str, origin: str = "") -> None:
    with repository.transaction() as session:
        row = session.scalar(select(WebSessionRow).where(WebSessionRow.secret_sha256 == _digest(secret)))
        if row is not None and row.revoked_at is None:
            row.revoked_at = datetime.now(UTC)
            audit.record(session, row.user.name, "session.sign_out", f"user:{row.user.name}", origin=origin)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
