"""Talking to an OpenID Connect provider, with Authlib: discovery, the authorization request (state, nonce,
PKCE S256), the code exchange, and the ID token's validation (its signature with the provider's keys, then
iss, aud, exp, iat and nonce: OpenID Connect Core 1.0, 3.1.3.7), plus the UserInfo claims.

Every failure becomes one of fairimage's errors at this edge: a provider that cannot be reached is a
ProviderUnavailableError, one that answers wrongly (a refused client secret, a page that is not a discovery
document) a ProviderError naming the setting to fix, and a callback or token that does not hold up an
InvalidInputError saying why. No message carries the client secret, a code or a token.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from authlib.common.security import generate_token
from authlib.integrations.httpx_client import OAuth2Client, OAuthError
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    InvalidKeyIdError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from fairimage.model.errors import InvalidInputError, ProviderError, ProviderUnavailableError
from fairimage.settings import OidcSettings

try:  # Authlib's httpx client runs on the httpx2 fork where that is installed (Authlib >= 1.7), else on httpx
    from httpx2 import HTTPError, HTTPStatusError
except ImportError:  # pragma: no cover - where httpx2 is absent
    from httpx import HTTPError, HTTPStatusError  # type: ignore[assignment]

DISCOVERY_PATH = "/.well-known/openid-configuration"
METADATA_SECONDS = 3600.0  # the discovery document and keys are fetched again after an hour
LEEWAY_SECONDS = 60  # clock difference tolerated between the provider and this server
TIMEOUT_SECONDS = 10.0
ISSUER_HINT = "check oidc issuer in fairimage.toml (or FAIRIMAGE_OIDC_ISSUER) and that the provider is up"
SECRET_HINT = (
    "check FAIRIMAGE_OIDC_CLIENT_SECRET (or client_secret under [oidc] in fairimage.toml) and oidc client_id "
    "against the client registered at the provider"
)


@dataclass(frozen=True)
class Authorization:
    """A sign-in begun: the provider's URL to send the browser to, and what the callback is checked against
    (``state``) or finishes with (``nonce``, ``code_verifier``), which this server keeps."""

    url: str
    state: str
    nonce: str
    code_verifier: str


@dataclass(frozen=True)
class Identity:
    """Who the provider says signed in: its issuer, their stable subject there, and their claims (the ID
    token's, with the UserInfo endpoint's added)."""

    issuer: str
    subject: str
    claims: dict[str, Any]


class OidcProvider:
    """One configured provider. Its discovery document and keys are fetched when first needed (a provider
    that is down does not stop the server from starting) and kept for ``METADATA_SECONDS``."""

    def __init__(self, settings: OidcSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._keys: KeySet | None = None
        self._fetched_at = 0.0

    @property
    def issuer(self) -> str:
        return self.settings.issuer

    def authorization(self, redirect_uri: str) -> Authorization:
        """The authorization request's URL (response_type code, PKCE S256), with new random values."""
        endpoint = self._endpoint("authorization_endpoint")
        state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
        with self._client(redirect_uri) as client:
            url, _ = client.create_authorization_url(
                endpoint, state=state, code_verifier=verifier, nonce=nonce
            )
        return Authorization(url, state, nonce, verifier)

    def identify(self, code: str, nonce: str, code_verifier: str, redirect_uri: str) -> Identity:
        """Exchange the callback's code (with the PKCE verifier) and validate the ID token it brings."""
        endpoint = self._endpoint("token_endpoint")
        with self._client(redirect_uri) as client:
            try:
                token = client.fetch_token(
                    endpoint, grant_type="authorization_code", code=code, code_verifier=code_verifier
                )
            except OAuthError as exc:
                raise _refusal(str(exc.error), "the token endpoint") from None
            except HTTPStatusError as exc:
                raise ProviderError(
                    f"the provider's token endpoint answered HTTP {exc.response.status_code}; {ISSUER_HINT}"
                ) from None
            except HTTPError as exc:
                raise _unreachable("its token endpoint", exc) from None
            if "id_token" not in token:
                raise ProviderError(
                    "the provider sent no ID token: check that oidc scopes in fairimage.toml include openid"
                )
            claims = self._validated(token["id_token"], nonce, token.get("access_token"))
            extra = self._userinfo(client, token, str(claims["sub"]))
        return Identity(self.issuer, str(claims["sub"]), {**extra, **claims})

    def check_response_issuer(self, issuer: str | None) -> None:
        """RFC 9207: a callback that names its issuer must name ours (else a mix-up between providers)."""
        if issuer is not None and issuer.rstrip("/") != self.issuer:
            raise InvalidInputError(
                "the sign-in answer came from another provider than the one configured; sign in again"
            )

    def _validated(self, id_token: str, nonce: str, access_token: str | None) -> dict[str, Any]:
        """The ID token's claims once its signature, issuer, audience, times and nonce hold."""
        algorithms = self.metadata().get("id_token_signing_alg_values_supported")
        registry = JWSRegistry(algorithms=algorithms, strict_check_header=False)
        try:
            try:
                decoded = jwt.decode(id_token, self._key_set(), registry=registry)
            except InvalidKeyIdError:  # the provider rotated its keys since we fetched them
                decoded = jwt.decode(id_token, self._key_set(refresh=True), registry=registry)
            # Authlib's ID token claims check azp but not aud by themselves: both are asked for here.
            options: dict[str, Any] = {
                "iss": {"essential": True, "values": [self.issuer]},
                "aud": {"essential": True, "value": self.settings.client_id},
            }
            params = {"nonce": nonce, "client_id": self.settings.client_id}
            if access_token:
                params["access_token"] = access_token
            claims = CodeIDToken(decoded.claims, decoded.header, options, params)
            claims.validate(leeway=LEEWAY_SECONDS)
        except ExpiredTokenError:
            expired = datetime.fromtimestamp(float(decoded.claims.get("exp", 0)), UTC)
            raise InvalidInputError(
                f"the provider's ID token expired at {expired:%Y-%m-%d %H:%M:%S} UTC, before it reached us "
                "(is the provider's clock right?); refused, sign in again"
            ) from None
        except InvalidClaimError as exc:
            raise InvalidInputError(_claim_refusal(exc.claim, self.settings.client_id)) from None
        except MissingClaimError as exc:
            raise InvalidInputError(
                f"the provider's ID token lacks the claim {exc.claim!r}; refused"
            ) from None
        except BadSignatureError:
            raise InvalidInputError(
                "the ID token's signature does not verify with the provider's published keys; refused"
            ) from None
        except (JoseError, ValueError) as exc:
            raise InvalidInputError(
                f"the provider's ID token cannot be read ({type(exc).__name__}); refused"
            ) from None
        return dict(claims)

    def _userinfo(self, client: OAuth2Client, token: dict[str, Any], subject: str) -> dict[str, Any]:
        """The UserInfo endpoint's claims (providers put profile claims there rather than in the ID token);
        none when there is no such endpoint. Its ``sub`` must be the ID token's (Core 1.0, 5.3.2)."""
        endpoint = self.metadata().get("userinfo_endpoint")
        if not endpoint or "access_token" not in token:
            return {}
        try:
            response = client.get(endpoint)  # with the access token just fetched
            response.raise_for_status()
            found = response.json()
        except (HTTPError, ValueError) as exc:
            raise ProviderError(
                f"the provider's UserInfo endpoint failed ({type(exc).__name__}); {ISSUER_HINT}"
            ) from None
        if not isinstance(found, dict) or found.get("sub") != subject:
            raise InvalidInputError(
                "the provider's UserInfo answer is for another user than its ID token; refused"
            )
        return found

    def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (OpenID Connect Discovery 1.0), fetched at most hourly."""
        with self._lock:
            if self._metadata is None or time.monotonic() - self._fetched_at > METADATA_SECONDS:
                self._metadata, self._keys = self._discover(), None
                self._fetched_at = time.monotonic()
            return self._metadata

    def _discover(self) -> dict[str, Any]:
        url = self.issuer + DISCOVERY_PATH
        try:
            with self._client() as client:
                response = client.request("GET", url, withhold_token=True)
        except HTTPError as exc:
            raise _unreachable(f"its discovery document {url}", exc) from None
        try:
            document = response.json() if response.status_code == 200 else None
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise ProviderError(
                f"{url} answered HTTP {response.status_code} without a discovery document; {ISSUER_HINT}"
            )
        missing = [
            key for key in ("authorization_endpoint", "token_endpoint", "jwks_uri") if key not in document
        ]
        if missing:
            raise ProviderError(
                f"{url} is not a complete discovery document (no {', '.join(missing)}); {ISSUER_HINT}"
            )
        if str(document.get("issuer", "")).rstrip("/") != self.issuer:  # Discovery 1.0, 4.3
            raise ProviderError(
                f"{url} names the issuer {document.get('issuer')!r}, not {self.issuer!r}: set oidc issuer in "
                "fairimage.toml to the provider's own issuer URL"
            )
        return document

    def _key_set(self, refresh: bool = False) -> KeySet:
        if self._keys is None or refresh:
            url = str(self.metadata()["jwks_uri"])
            try:
                with self._client() as client:
                    response = client.request("GET", url, withhold_token=True)
                    response.raise_for_status()
                    self._keys = KeySet.import_key_set(response.json())
            except HTTPError as exc:
                raise _unreachable(f"its keys at {url}", exc) from None
            except (ValueError, JoseError):
                raise ProviderError(f"{url} does not hold a JSON Web Key Set; {ISSUER_HINT}") from None
        return self._keys

    def _endpoint(self, name: str) -> str:
        return str(self.metadata()[name])

    def _client(self, redirect_uri: str | None = None) -> OAuth2Client:
        return OAuth2Client(
            client_id=self.settings.client_id,
            client_secret=self.settings.client_secret.get_secret_value(),
            token_endpoint_auth_method=self._auth_method(),
            scope=self.settings.scopes,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            timeout=TIMEOUT_SECONDS,
        )

    def _auth_method(self) -> str:
        """client_secret_basic unless the provider takes only client_secret_post (Discovery 1.0, 3)."""
        methods = (self._metadata or {}).get("token_endpoint_auth_methods_supported") or [
            "client_secret_basic"
        ]
        return "client_secret_basic" if "client_secret_basic" in methods else "client_secret_post"


def _unreachable(what: str, exc: Exception) -> ProviderUnavailableError:
    return ProviderUnavailableError(
        f"the sign-in provider cannot be reached at {what} ({type(exc).__name__}); {ISSUER_HINT}"
    )


def _refusal(error: str, where: str) -> Exception:
    """An OAuth 2.0 error answer (RFC 6749, 5.2) as the error a person can act on."""
    if error == "invalid_client":
        return ProviderError(f"the provider refused the client secret (invalid_client); {SECRET_HINT}")
    if error == "invalid_grant":
        return InvalidInputError(
            "the provider refused the sign-in code: it was used already or has expired (invalid_grant); "
            "sign in again"
        )
    if error == "unauthorized_client":
        return ProviderError(
            "the provider does not let this client use the authorization code flow (unauthorized_client): "
            "allow it for oidc client_id at the provider"
        )
    return ProviderError(f"{where} of the provider answered {error!r}; {ISSUER_HINT}")


def _claim_refusal(claim: str, client_id: str) -> str:
    reasons = {
        "aud": f"the ID token was issued for another client, not this repository's ({client_id!r}); refused",
        "azp": f"the ID token was issued to another party, not this repository's ({client_id!r}); refused",
        "iss": "the ID token was issued by another provider than the one configured; refused",
        "nonce": "the ID token's nonce does not match this sign-in (a token replayed from another); refused",
        "iat": "the ID token was issued in the future by our clock (is the provider's clock right?); refused",
        "nbf": "the ID token is not valid yet by our clock (is the provider's clock right?); refused",
        "at_hash": "the ID token does not belong with the access token sent beside it; refused",
    }
    return reasons.get(claim, f"the ID token's claim {claim!r} is not valid; refused")
