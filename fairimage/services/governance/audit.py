"""The append-only audit log: every state change and every access decision on protected data, each entry
hash-chained to the one before it (like a transparency log), so that an edited, deleted, inserted or
reordered entry is found by ``verify`` and named.

An entry's hash is the sha256 of the canonical JSON of its fields and the previous entry's hash. Appending
first bumps the one-row head table, which serialises concurrent appends (a row lock on PostgreSQL, the
write lock on SQLite) and lets ``verify`` notice entries removed from the end. An admin can also keep the
head (``fairimage audit head``) elsewhere and later check that the chain still passes through it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fairimage.catalog.tables import AuditHeadRow, AuditRow
from fairimage.model.errors import InvalidInputError
from fairimage.services.repository import Repository

GENESIS = "0" * 64


@dataclass(frozen=True)
class Entry:
    seq: int
    at: str
    actor: str
    action: str
    target: str
    decision: str
    origin: str
    details: dict[str, Any]
    entry_hash: str


def entry_hash(row: AuditRow | dict[str, Any]) -> str:
    """The hash of an entry as stored: its fields, in a fixed order, and the previous entry's hash."""
    get = row.get if isinstance(row, dict) else lambda name: getattr(row, name)
    fields = [get(name) for name in ("seq", "at", "actor", "action", "target", "decision", "origin")]
    fields += [get("details"), get("prev_hash")]
    return hashlib.sha256(json.dumps(fields, separators=(",", ":")).encode()).hexdigest()


def record(
    session: Session,
    actor: str,
    action: str,
    target: str,
    decision: str = "done",
    origin: str = "",
    **details: Any,
) -> int:
    """Append an entry in ``session``'s transaction, so it commits (or not) with the change it records."""
    seq, previous = session.execute(
        update(AuditHeadRow)
        .where(AuditHeadRow.id == 1)
        .values(seq=AuditHeadRow.seq + 1)
        .returning(AuditHeadRow.seq, AuditHeadRow.entry_hash)
    ).one()
    fields = {
        "seq": int(seq),
        "at": datetime.now(UTC).isoformat(timespec="microseconds"),
        "actor": actor,
        "action": action,
        "target": target,
        "decision": decision,
        "origin": origin,
        "details": json.dumps(details, sort_keys=True, separators=(",", ":"), default=str),
        "prev_hash": previous,
    }
    digest = entry_hash(fields)
    session.add(AuditRow(**fields, entry_hash=digest))
    session.execute(update(AuditHeadRow).where(AuditHeadRow.id == 1).values(entry_hash=digest))
    return int(seq)


@dataclass(frozen=True)
class Verification:
    """The outcome of checking the chain: ``problem`` names the first bad entry, or is None."""

    entries: int
    head_seq: int
    head_hash: str
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify(repository: Repository, anchor: str | None = None) -> Verification:
    """Walk the whole chain; stop at the first entry that is not what was written. ``anchor`` is a head
    kept from earlier (``SEQ:HASH``): the chain must still pass through it."""
    wanted = _parse_anchor(anchor) if anchor else None
    with repository.reading() as session:
        head = session.get(AuditHeadRow, 1)
        head_seq, head_hash = (int(head.seq), head.entry_hash) if head else (0, GENESIS)
        count, previous, expected = 0, GENESIS, 1
        for row in _rows(session):
            problem = _check(row, expected, previous)
            if problem is None and wanted and row.seq == wanted[0] and row.entry_hash != wanted[1]:
                problem = f"entry {row.seq} differs from the anchor kept earlier: the chain was rewritten"
            if problem:
                return Verification(count, head_seq, head_hash, problem)
            count, previous, expected = count + 1, row.entry_hash, row.seq + 1
    if wanted and wanted[0] >= expected:
        return Verification(count, head_seq, head_hash, f"entry {wanted[0]} of the anchor is gone")
    if (head_seq, head_hash) != (expected - 1, previous):
        return Verification(
            count,
            head_seq,
            head_hash,
            f"the log ends at entry {expected - 1} but its head records entry {head_seq}: "
            "entries were removed from the end, or added without the head",
        )
    return Verification(count, head_seq, head_hash, None)


def entries(repository: Repository, limit: int = 50, action: str | None = None) -> list[Entry]:
    """The newest entries, newest first."""
    with repository.reading() as session:
        query = select(AuditRow).order_by(AuditRow.seq.desc()).limit(limit)
        if action:
            query = query.where(AuditRow.action == action)
        return [
            Entry(
                seq=int(row.seq),
                at=row.at,
                actor=row.actor,
                action=row.action,
                target=row.target,
                decision=row.decision,
                origin=row.origin,
                details=json.loads(row.details),
                entry_hash=row.entry_hash,
            )
            for row in session.scalars(query)
        ]


def _rows(session: Session) -> Iterator[AuditRow]:
    yield from session.scalars(select(AuditRow).order_by(AuditRow.seq).execution_options(yield_per=1000))


def _check(row: AuditRow, expected: int, previous: str) -> str | None:
    if row.seq > expected:
        return f"entry {expected} is missing (the log jumps from {expected - 1} to {row.seq})"
    if row.seq < expected:
        return f"entry {row.seq} is out of order (after entry {expected - 1})"
    if row.prev_hash != previous:
        return (
            f"entry {row.seq} does not follow entry {row.seq - 1}: an entry was removed, inserted or "
            "reordered here"
        )
    if entry_hash(row) != row.entry_hash:
        return f"entry {row.seq} was changed after it was written"
    return None


def _parse_anchor(text: str) -> tuple[int, str]:
    seq, _, digest = text.partition(":")
    if not seq.isdigit() or len(digest) != 64:
        raise InvalidInputError(f"anchor {text!r}: give SEQ:HASH as printed by 'fairimage audit head'")
    return int(seq), digest
