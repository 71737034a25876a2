"""What nodes tell each other: a node's description (at /.well-known/fairimage-node) and the pages of its
change feed, validated at the boundary so that a malformed page from a peer is one clear error and never
half a harvest."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from fairimage.model.federation.checkpoints import CheckpointError, load_public_key, public_key_text

NODE_NAME = r"^[a-z0-9][a-z0-9-]{0,62}$"
WELL_KNOWN = "/.well-known/fairimage-node"
FEED = "/federation/changes"
SIGNATURE_HEADER = "fairimage-signature"  # base64 Ed25519 signature of the response body
MAX_PAGE = 500

Text = Annotated[str, Field(max_length=100_000)]
Short = Annotated[str, Field(max_length=2_000)]


class _Record(BaseModel):
    # Unknown fields a newer node adds are ignored, so nodes of different versions still federate.
    model_config = ConfigDict(frozen=True, extra="ignore")


class NodeDocument(_Record):
    """Who a node is: its name, its address, the Ed25519 key that signs what it publishes."""

    name: Annotated[str, Field(pattern=NODE_NAME)]
    url: Short
    public_key: Annotated[str, Field(min_length=44, max_length=44)]  # base64 of the raw 32-byte key
    software: Short = "fairimage"
    version: Short = ""

    @field_validator("public_key")
    @classmethod
    def _ed25519_key(cls, text: str) -> str:
        """Canonical base64 of an Ed25519 public key, so keys compare as text and fingerprint as bytes."""
        try:
            key = load_public_key(text)
        except CheckpointError as exc:
            raise ValueError(exc.message) from None
        if public_key_text(key) != text:
            raise ValueError("not the canonical base64 of the key")
        return text


class Conditions(_Record):
    """What a restricted study's node publishes of its access conditions."""

    policy: Short
    data_use: list[Short] = Field(default_factory=list, max_length=50)  # DUO codes, e.g. DUO:0000007


class StudyRecord(_Record):
    """A study as its node publishes it to other nodes: all its public metadata, or, for a restricted
    study, its title and access conditions only."""

    access: Literal["public", "restricted"]
    title: Short
    url: Short  # the study's page at its node
    description: Text = ""
    keywords: list[Short] = Field(default_factory=list, max_length=200)
    authors: list[Short] = Field(default_factory=list, max_length=500)
    license: Short = ""
    version: int | None = None
    images: Annotated[int, Field(ge=0)] = 0
    conditions: Conditions | None = None


class GroupRecord(_Record):
    """Images of a study that share their text and facet values (the node's search groups)."""

    text: Text
    images: Annotated[int, Field(ge=0)]
    facets: list[tuple[Short, Short, bool]] = Field(default_factory=list, max_length=2_000)


class Change(_Record):
    """A study that changed at its node since the cursor, as it is now."""

    id: Annotated[str, Field(min_length=1, max_length=40)]
    pid: Short
    stamp: datetime
    study: StudyRecord
    groups: list[GroupRecord] = Field(default_factory=list, max_length=5_000)


class FeedPage(_Record):
    """One page of a node's change feed: the changes after ``after``, the studies no longer published
    (``gone``: the sha256 of each one's PID, so that a study that was never public is not revealed by
    its removal), and the cursor to ask from next."""

    node: Annotated[str, Field(pattern=NODE_NAME)]
    after: Short
    cursor: Short
    more: bool
    changes: list[Change] = Field(max_length=MAX_PAGE)
    gone: list[Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]] = Field(
        default_factory=list, max_length=MAX_PAGE
    )


def pid_digest(pid: str) -> str:
    """How the feed names a study that is gone: the sha256 of its PID, in hex."""
    return hashlib.sha256(pid.encode()).hexdigest()


CHECKPOINT = "/federation/checkpoint"  # the node's latest signed audit checkpoint (text/plain)
CONSISTENCY = "/federation/consistency"  # ?old=M&new=N: an RFC 9162 consistency proof
WITNESSED = "/federation/witnessed"  # ?origin=NODE/audit: the peer's checkpoints this node cosigned


class ConsistencyProof(_Record):
    old: Annotated[int, Field(ge=0)]
    new: Annotated[int, Field(ge=0)]
    proof: list[Annotated[str, Field(max_length=64)]] = Field(max_length=128)  # base64 hashes


class WitnessedCheckpoint(_Record):
    """A checkpoint of another node's log that this node checked and cosigned."""

    origin: Short
    size: Annotated[int, Field(ge=0)]
    note: Annotated[str, Field(max_length=20_000)]  # the log's signed note
    cosignature: Annotated[str, Field(max_length=1_000)]  # the witness's signature line
    witnessed_at: datetime


class WitnessedList(_Record):
    witness: Annotated[str, Field(pattern=NODE_NAME)]
    checkpoints: list[WitnessedCheckpoint] = Field(max_length=100_000)


MIRROR_SOURCES = "/federation/mirror-sources"  # /{id}: what a mirror of a public study or image copies
Digest = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class FileRecord(_Record):
    """The original file an image was made from, as its node recorded it."""

    name: Short
    format: Short
    size: Annotated[int, Field(ge=0)]
    sha256: Digest


class MirrorSource(_Record):
    """What a node publishes of a public image for mirrors: its identity, its study's, its original
    file's, and its manifest (every stored object's size and sha256) exactly as stored."""

    id: Annotated[str, Field(pattern=r"^img-[0-9A-Za-z]{1,40}$")]
    pid: Short
    name: Short
    study_id: Annotated[str, Field(pattern=r"^study-[0-9A-Za-z]{1,40}$")]
    study_pid: Short
    study_name: Short
    study_rembi: dict[str, Any] | None = None
    file: FileRecord
    manifest: Annotated[str, Field(max_length=200_000_000)]
    manifest_sha256: Digest


class MirrorSources(_Record):
    node: Annotated[str, Field(pattern=NODE_NAME)]
    images: list[MirrorSource] = Field(max_length=100_000)
