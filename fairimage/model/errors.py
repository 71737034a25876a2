"""One exception hierarchy for every layer.

Each class carries the HTTP status (mapped once in ``api/errors.py``) and the CLI exit code (mapped once in
``cli.py``). Messages are written for the user: what is wrong, with which file or field, and how to fix it.

    FairimageError
    ├── NotFoundError          404 / 4   an id, key or path that does not exist (or may not be seen)
    ├── InvalidInputError      400 / 2   a request, argument or setting that cannot be used as given
    │   └── CorruptFileError   422 / 1   a file that is truncated, empty or unreadable
    ├── UnsupportedError       415 / 1   a file kind or feature fairimage does not read
    ├── ConflictError          409 / 1   the thing exists already, or state forbids the change
    ├── ForbiddenError         403 / 3   the caller may not do this
    │   ├── UnauthorizedError  401 / 3   a credential that is unknown, expired or revoked
    │   └── ThrottledError     429 / 3   too many failed sign-ins: wait, then try again
    ├── StorageError           503 / 5   the catalog or object store failed underneath us
    └── ProviderError          502 / 5   an identity provider or peer node answered wrongly
        └── ProviderUnavailableError
                               503 / 5   an identity provider or peer node that cannot be reached
"""

from __future__ import annotations


class FairimageError(Exception):
    """Base of every error fairimage raises on purpose; ``str(err)`` is the user's one-line message."""

    http_status = 500
    exit_code = 1
    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFoundError(FairimageError):
    http_status = 404
    exit_code = 4
    code = "not_found"


class InvalidInputError(FairimageError):
    http_status = 400
    exit_code = 2
    code = "invalid"


class CorruptFileError(InvalidInputError):
    http_status = 422
    exit_code = 1
    code = "corrupt_file"


class UnsupportedError(FairimageError):
    http_status = 415
    exit_code = 1
    code = "unsupported"


class ConflictError(FairimageError):
    http_status = 409
    exit_code = 1
    code = "conflict"


class ForbiddenError(FairimageError):
    http_status = 403
    exit_code = 3
    code = "forbidden"


class UnauthorizedError(ForbiddenError):
    """A credential was sent and is not good (unknown, expired, revoked): 401, so a client signs in again."""

    http_status = 401
    code = "unauthorized"


class ThrottledError(ForbiddenError):
    """Too many failed attempts from this name or address; ``retry_after`` seconds until the next try."""

    http_status = 429
    code = "throttled"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StorageError(FairimageError):
    http_status = 503
    exit_code = 5
    code = "storage"


class ProviderError(FairimageError):
    """A service this node relies on answers, but not as it should: an OpenID Connect provider not as
    configured (a wrong client secret, a discovery document that is not one; the message names the setting
    to fix, never a secret), a peer node with a malformed or badly signed answer."""

    http_status = 502
    exit_code = 5
    code = "provider"


class ProviderUnavailableError(ProviderError):
    """An OpenID Connect provider or a peer node that cannot be reached (down, or a wrong URL)."""

    http_status = 503
    code = "provider_unavailable"
