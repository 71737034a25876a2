"""Witnessing: this node checks each peer's audit checkpoint (signed by the peer's pinned key, and
consistent with the last one witnessed, by an RFC 9162 consistency proof) and cosigns it; and it asks its
peers for the checkpoints of its own log they cosigned, to prove its log still matches every one. An
operator who rewrites or truncates their node's history, even recomputing every hash of the chain, is
caught: by witnesses at their next visit, and by ``fairimage audit verify --witnesses``."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from fairimage.catalog import queries
from fairimage.catalog.tables import PeerRow, WitnessedCheckpointRow
from fairimage.model.errors import FairimageError, ProviderError
from fairimage.model.federation import checkpoints, merkle
from fairimage.model.federation.checkpoints import Checkpoint, CheckpointError
from fairimage.model.federation.feed import (
    CHECKPOINT,
    CONSISTENCY,
    WITNESSED,
    ConsistencyProof,
    WitnessedCheckpoint,
    WitnessedList,
)
from fairimage.model.governance.policy import Principal, Scope
from fairimage.services.federation import identity, peers, transparency
from fairimage.services.governance import access, audit
from fairimage.services.repository import Repository


@dataclass(frozen=True)
class WitnessOutcome:
    peer: str
    size: int
    status: str  # "cosigned", "unchanged", "refused" (inconsistent with what was witnessed) or "failed"
    message: str = ""


def witness(repository: Repository, principal: Principal, name: str | None = None) -> list[WitnessOutcome]:
    """Check and cosign the current checkpoint of every peer (or the one named)."""
    access.require(principal, Scope.ADMIN)
    if name is not None:
        rows = [peers.pinned(repository, name)]
    else:
        with repository.reading() as session:
            rows = list(session.scalars(select(PeerRow).order_by(PeerRow.name)))
            for row in rows:
                session.expunge(row)
    return [_witness_peer(repository, principal, row) for row in rows]


def _witness_peer(repository: Repository, principal: Principal, row: PeerRow) -> WitnessOutcome:
    log = f"{row.node_name}/audit"
    try:
        note = peers.fetch(row.url + CHECKPOINT).text
        checkpoint = checkpoints.open_note(note, log, checkpoints.load_public_key(row.public_key))
        if checkpoint.origin != log:
            raise ProviderError(f"{row.url}: the checkpoint is of {checkpoint.origin!r}, not {log!r}")
        problem = _inconsistency(repository, row, checkpoint)
    except FairimageError as exc:  # CheckpointError too: a note not signed by the pinned key
        return WitnessOutcome(row.name, 0, "failed", exc.message)
    if problem == "unchanged":
        return WitnessOutcome(row.name, checkpoint.size, "unchanged")
    with repository.transaction() as session:
        if problem:
            audit.record(
                session,
                principal.name,
                "witness.refuse",
                f"peer:{row.name}",
                "refused",
                principal.origin,
                size=checkpoint.size,
                root=checkpoint.root.hex(),
                problem=problem,
            )
            return WitnessOutcome(row.name, checkpoint.size, "refused", problem)
        settings = repository.settings
        line = checkpoints.cosign(
            checkpoint, identity.node_name(settings), identity.signing_key(settings), int(time.time())
        )
        session.add(
            WitnessedCheckpointRow(
                origin=log,
                public_key=row.public_key,
                size=checkpoint.size,
                root=checkpoint.root.hex(),
                note=note,
                cosignature=line,
                witnessed_at=datetime.now(UTC),
            )
        )
        audit.record(
            session,
            principal.name,
            "witness.cosign",
            f"peer:{row.name}",
            origin=principal.origin,
            size=checkpoint.size,
            root=checkpoint.root.hex(),
        )
    return WitnessOutcome(row.name, checkpoint.size, "cosigned")


def _inconsistency(repository: Repository, row: PeerRow, checkpoint: Checkpoint) -> str:
    """Why ``checkpoint`` cannot follow the last one witnessed of the peer's log ("" if it can, and
    "unchanged" if it is that one)."""
    with repository.reading() as session:
        last = session.scalars(
            select(WitnessedCheckpointRow)
            .where(WitnessedCheckpointRow.origin == checkpoint.origin)
            .order_by(WitnessedCheckpointRow.size.desc())
            .limit(1)
        ).first()
    if last is None:
        return ""
    when = (queries.aware(last.witnessed_at) or last.witnessed_at).isoformat(timespec="seconds")
    old_root = bytes.fromhex(last.root)
    if checkpoint.size < last.size:
        return (
            f"the log of {row.name} has {checkpoint.size} entries, fewer than the {last.size} witnessed on "
            f"{when}: its history was truncated"
        )
    if checkpoint.size == last.size:
        if checkpoint.root == old_root:
            return "unchanged"
        return (
            f"the log of {row.name} at size {last.size} differs from the one witnessed on {when}: rewritten"
        )
    response = peers.fetch(row.url + CONSISTENCY, params={"old": str(last.size), "new": str(checkpoint.size)})
    proof = peers.parse(response, ConsistencyProof, "a consistency proof")
    hashes = [base64.b64decode(node) for node in proof.proof]
    if (proof.old, proof.new) != (last.size, checkpoint.size) or not merkle.verify_consistency(
        last.size, checkpoint.size, old_root, checkpoint.root, hashes
    ):
        return (
            f"the log of {row.name} at size {checkpoint.size} does not extend the {last.size} entries "
            f"witnessed on {when}: its history was rewritten"
        )
    return ""


def witnessed(repository: Repository, log: str) -> WitnessedList:
    """The checkpoints of the log ``log`` (NODE/audit) this node cosigned, oldest first."""
    with repository.reading() as session:
        rows = session.scalars(
            select(WitnessedCheckpointRow)
            .where(WitnessedCheckpointRow.origin == log)
            .order_by(WitnessedCheckpointRow.size)
        ).all()
        items = [
            WitnessedCheckpoint(
                origin=row.origin,
                size=row.size,
                note=row.note,
                cosignature=row.cosignature,
                witnessed_at=queries.aware(row.witnessed_at) or row.witnessed_at,
            )
            for row in rows
        ]
    return WitnessedList(witness=identity.node_name(repository.settings), checkpoints=items)


@dataclass(frozen=True)
class WitnessCheck:
    peer: str
    checkpoints: int  # how many checkpoints of this log the peer cosigned
    status: str  # "consistent", "inconsistent", "invalid" (not signed as it should be) or "unreachable"
    problem: str = ""


def verify_witnessed(repository: Repository, principal: Principal) -> list[WitnessCheck]:
    """Whether this node's log as it is now matches every checkpoint of it that its peers cosigned; each
    peer's answer names the first checkpoint that no longer matches."""
    access.require(principal, Scope.READ)
    settings = repository.settings
    log = transparency.origin(settings)
    own_key = identity.signing_key(settings).public_key()
    with repository.reading() as session:
        rows = list(session.scalars(select(PeerRow).order_by(PeerRow.name)))
        for row in rows:
            session.expunge(row)
    held: dict[str, list[tuple[Checkpoint, str]]] = {}
    checks: dict[str, WitnessCheck] = {}
    for row in rows:
        try:
            response = peers.fetch(row.url + WITNESSED, params={"origin": log})
            listed = peers.parse(response, WitnessedList, "a list of witnessed checkpoints")
            witness_key = checkpoints.load_public_key(row.public_key)
            held[row.name] = []
            for item in listed.checkpoints:
                checkpoint = checkpoints.open_note(item.note, log, own_key)
                checkpoints.verify_cosignature(checkpoint, item.cosignature, row.node_name, witness_key)
                held[row.name].append((checkpoint, item.witnessed_at.isoformat(timespec="seconds")))
        except CheckpointError as exc:
            checks[row.name] = WitnessCheck(row.name, 0, "invalid", exc.message)
        except FairimageError as exc:
            checks[row.name] = WitnessCheck(row.name, 0, "unreachable", exc.message)
    sizes = [checkpoint.size for items in held.values() for checkpoint, _ in items]
    roots = transparency.roots_at(repository, sizes)
    for name, items in held.items():
        checks[name] = _compare(name, sorted(items, key=lambda item: item[0].size), roots)
    return [checks[row.name] for row in rows]


def _compare(peer: str, items: list[tuple[Checkpoint, str]], roots: dict[int, bytes]) -> WitnessCheck:
    for checkpoint, when in items:
        if checkpoint.size not in roots:
            return WitnessCheck(
                peer,
                len(items),
                "inconsistent",
                f"{peer} cosigned the log at {checkpoint.size} entries on {when}, but it has fewer now: "
                "entries were removed",
            )
        if roots[checkpoint.size] != checkpoint.root:
            return WitnessCheck(
                peer,
                len(items),
                "inconsistent",
                f"the first {checkpoint.size} entries no longer hash to the checkpoint {peer} cosigned on "
                f"{when} (the first that differs): entries up to {checkpoint.size} were rewritten",
            )
    return WitnessCheck(peer, len(items), "consistent")
