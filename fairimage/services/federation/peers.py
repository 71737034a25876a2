"""The peers of this node: added by address after their node document is fetched and their signing key
pinned; everything later fetched from a peer is checked against that key, and a peer whose key changed is
refused until an admin removes it and adds it again."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar
from urllib.parse import urlsplit

import httpx
from cryptography.exceptions import InvalidSignature
from pydantic import BaseModel, ValidationError
from sqlalchemy import func, select

from fairimage.catalog import federation as catalog
from fairimage.catalog import queries
from fairimage.catalog.tables import HarvestedStudyRow, PeerRow
from fairimage.model.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    ProviderError,
    ProviderUnavailableError,
)
from fairimage.model.federation import checkpoints
from fairimage.model.federation.feed import SIGNATURE_HEADER, WELL_KNOWN, NodeDocument
from fairimage.model.governance.policy import Principal, Scope
from fairimage.services.federation import identity
from fairimage.services.governance import access, audit
from fairimage.services.repository import Repository

M = TypeVar("M", bound=BaseModel)
TIMEOUT = 10.0
MAX_ANSWER = 64 << 20  # bytes of a peer's answer read at most (a feed page, a checkpoint, a proof)


@dataclass(frozen=True)
class Peer:
    name: str
    url: str
    public_key: str
    fingerprint: str
    added_at: datetime
    harvested_at: datetime | None
    records: int
    last_error: str


def normalise_url(url: str) -> str:
    """A peer's base URL (http(s)://host[:port][/prefix]) without a trailing slash."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise InvalidInputError(f"{url!r}: give the node's base URL, e.g. https://images.example.org")
    return url.strip().rstrip("/")


def fetch(
    url: str, timeout: float = TIMEOUT, params: dict[str, str] | None = None, limit: int = MAX_ANSWER
) -> httpx.Response:
    """GET ``url``, reading at most ``limit`` bytes of the answer; a peer that cannot be reached, answers
    with an error or sends more is one clear error."""
    try:
        with httpx.stream("GET", url, params=params, timeout=timeout, follow_redirects=False) as response:
            body = bytearray()
            for block in response.iter_bytes():
                body += block
                if len(body) > limit:
                    raise ProviderError(
                        f"{url}: the answer is larger than {limit >> 20} MiB; nothing was kept"
                    )
        response._content = bytes(body)  # read whole, within the limit, for .content, .text and .json()
    except httpx.TimeoutException:
        raise ProviderUnavailableError(f"{url}: no answer within {timeout:g} s; is the node up?") from None
    except httpx.HTTPError as exc:
        raise ProviderUnavailableError(
            f"{url}: cannot reach it ({type(exc).__name__}); check the address and that the node is running"
        ) from None
    if response.status_code != 200:
        raise ProviderError(f"{url}: answered {response.status_code}, not a fairimage node's answer")
    return response


def parse(response: httpx.Response, model: type[M], what: str) -> M:
    """The body of a peer's answer as ``model``; a malformed one is a ProviderError naming the field."""
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        problem = exc.errors()[0]
        field = ".".join(str(part) for part in problem["loc"]) or "the body"
        raise ProviderError(f"{response.url}: not {what} ({field}: {problem['msg']})") from None


def verify(response: httpx.Response, public_key: str, peer: str) -> None:
    """The body was signed by ``public_key`` (the peer's pinned key), or ProviderError."""
    signature = response.headers.get(SIGNATURE_HEADER, "")
    try:
        key = checkpoints.load_public_key(public_key)
        key.verify(base64.b64decode(signature, validate=True), response.content)
    except (InvalidSignature, ValueError):
        raise ProviderError(
            f"{response.url}: the answer is not signed by peer {peer}'s pinned key "
            f"({identity.fingerprint(public_key)}); nothing of it was kept"
        ) from None


def describe(url: str) -> NodeDocument:
    """The node document of the node at ``url``."""
    return parse(fetch(url + WELL_KNOWN), NodeDocument, "a fairimage node document")


def add_peer(repository: Repository, principal: Principal, url: str, name: str | None = None) -> Peer:
    """Record the node at ``url`` as a peer, pinning the key it publishes now."""
    access.require(principal, Scope.ADMIN)
    url = normalise_url(url)
    document = describe(url)
    name = name or document.name
    own = checkpoints.public_key_text(identity.signing_key(repository.settings))
    if document.public_key == own:
        raise InvalidInputError(f"{url} is this node itself (it publishes this node's key)")
    with repository.transaction() as session:
        for row in session.scalars(
            select(PeerRow).where(
                (PeerRow.name == name) | (PeerRow.url == url) | (PeerRow.public_key == document.public_key)
            )
        ):
            raise ConflictError(
                f"peer {row.name} ({row.url}) is already added with that name, address or key; "
                f"remove it first with 'fairimage peer remove {row.name}'"
            )
        row = PeerRow(
            name=name,
            node_name=document.name,
            url=url,
            public_key=document.public_key,
            added_at=datetime.now(UTC),
            added_by=principal.name,
        )
        session.add(row)
        audit.record(
            session,
            principal.name,
            "peer.add",
            f"peer:{name}",
            origin=principal.origin,
            url=url,
            key=identity.fingerprint(document.public_key),
        )
    return _peer(row, 0)


def remove_peer(repository: Repository, principal: Principal, name: str) -> None:
    """Forget a peer and everything harvested from it."""
    access.require(principal, Scope.ADMIN)
    with repository.transaction() as session:
        row = session.get(PeerRow, name)
        if row is None:
            raise NotFoundError(f"peer {name!r} not found; 'fairimage peer list' shows the peers")
        catalog.drop_peer_records(session, name)
        session.delete(row)
        audit.record(session, principal.name, "peer.remove", f"peer:{name}", origin=principal.origin)


def list_peers(repository: Repository, principal: Principal) -> list[Peer]:
    access.require(principal, Scope.READ)
    with repository.reading() as session:
        counts = dict(
            session.execute(
                select(HarvestedStudyRow.peer, func.count()).group_by(HarvestedStudyRow.peer)
            ).all()
        )
        return [
            _peer(row, int(counts.get(row.name, 0)))
            for row in session.scalars(select(PeerRow).order_by(PeerRow.name))
        ]


def pinned(repository: Repository, name: str) -> PeerRow:
    with repository.reading() as session:
        row = session.get(PeerRow, name)
        if row is None:
            raise NotFoundError(f"peer {name!r} not found; 'fairimage peer list' shows the peers")
        session.expunge(row)
        return row


def check_key(row: PeerRow, document: NodeDocument) -> None:
    """Refuse, loudly, a peer that now publishes another key than the one pinned."""
    if document.public_key != row.public_key:
        now, then = identity.fingerprint(document.public_key), identity.fingerprint(row.public_key)
        raise ConflictError(
            f"REFUSED: peer {row.name} ({row.url}) now publishes the key {now}, not the {then} pinned "
            "when it was added; it may have been replaced by another server. Ask its operator; if they "
            f"rotated the key, 'fairimage peer remove {row.name}' and add it again"
        )


def _peer(row: PeerRow, records: int) -> Peer:
    return Peer(
        name=row.name,
        url=row.url,
        public_key=row.public_key,
        fingerprint=identity.fingerprint(row.public_key),
        added_at=queries.aware(row.added_at) or row.added_at,
        harvested_at=queries.aware(row.harvested_at),
        records=records,
        last_error=row.last_error,
    )
