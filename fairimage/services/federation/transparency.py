"""This node's audit log as a transparency log: signed checkpoints (the Merkle root, RFC 9162, over the
first N entries, published as a C2SP signed note) and consistency proofs between any two sizes, so that
peers can witness that the log only ever grows. A leaf is an entry's hash, which covers the entry's fields
and the entry before it."""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fairimage.catalog.tables import AuditCheckpointRow, AuditHeadRow, AuditRow
from fairimage.model.errors import InvalidInputError
from fairimage.model.federation import merkle
from fairimage.model.federation.checkpoints import Checkpoint, sign_note
from fairimage.services.federation import identity
from fairimage.services.repository import Repository
from fairimage.settings import Settings


def origin(settings: Settings) -> str:
    """The log's name in its checkpoints (and the name its signatures are made under): NODE/audit."""
    return f"{identity.node_name(settings)}/audit"


def checkpoint(repository: Repository) -> str:
    """The signed note of the log as it is now: the latest checkpoint, or a new one if entries were added
    since (hashing the new entries only)."""
    for _ in range(3):
        try:
            return _checkpoint(repository)
        except IntegrityError:
            continue  # another process wrote the same checkpoint first: take theirs
    return _checkpoint(repository)


def _checkpoint(repository: Repository) -> str:
    settings = repository.settings
    with repository.transaction() as session:
        head = session.get(AuditHeadRow, 1)
        size = int(head.seq) if head is not None else 0
        latest = session.scalars(
            select(AuditCheckpointRow).order_by(AuditCheckpointRow.size.desc()).limit(1)
        ).first()
        if latest is not None and latest.size == size:
            return latest.note
        if latest is not None and latest.size < size:
            builder = merkle.TreeBuilder.resume(latest.size, [bytes.fromhex(h) for h in latest.subtrees])
        else:
            builder = merkle.TreeBuilder()
        builder.extend(leaves(session, builder.size, size))
        root = builder.root()
        body = Checkpoint(origin(settings), size, root).body()
        note = sign_note(body, origin(settings), identity.signing_key(settings))
        session.add(
            AuditCheckpointRow(
                size=size,
                root=root.hex(),
                note=note,
                subtrees=[subtree.hex() for subtree in builder.state()[1]],
                created_at=datetime.now(UTC),
            )
        )
    return note


def leaves(session: Session, start: int, end: int) -> Iterator[bytes]:
    """The leaf hashes of entries start+1 .. end (entries are numbered from 1)."""
    query = (
        select(AuditRow.entry_hash)
        .where(AuditRow.seq > start, AuditRow.seq <= end)
        .order_by(AuditRow.seq)
        .execution_options(yield_per=5000)
    )
    for entry_hash in session.scalars(query):
        yield merkle.leaf_hash(bytes.fromhex(entry_hash))


def consistency_proof(repository: Repository, old: int, new: int) -> list[str]:
    """The RFC 9162 proof that the log at size ``new`` extends the log at size ``old`` (base64 hashes)."""
    with repository.reading() as session:
        head = session.get(AuditHeadRow, 1)
        size = int(head.seq) if head is not None else 0
        if not 0 <= old <= new <= size:
            raise InvalidInputError(f"old={old}, new={new}: give 0 <= old <= new <= {size} (the log's size)")
        hashes = list(leaves(session, 0, new))
    return [base64.b64encode(node).decode() for node in merkle.consistency_proof(hashes, old, new)]


def roots_at(repository: Repository, sizes: Sequence[int]) -> dict[int, bytes]:
    """The log's Merkle root at each of ``sizes`` as it is now (one pass over the entries); sizes beyond
    the log's end are left out."""
    wanted = sorted(set(sizes))
    found: dict[int, bytes] = {}
    builder = merkle.TreeBuilder()
    if 0 in wanted:
        found[0] = builder.root()
    with repository.reading() as session:
        for leaf in leaves(session, 0, max(wanted, default=0)):
            builder.append(leaf)
            if builder.size in wanted:
                found[builder.size] = builder.root()
    return found
