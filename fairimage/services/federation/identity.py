"""This node's identity: its name and the Ed25519 key that signs what it publishes to other nodes (its
change feed, its audit checkpoints). The key is made the first time it is needed and kept beside the
repository, readable by its owner only; its public half is published at /.well-known/fairimage-node."""

from __future__ import annotations

import base64
import hashlib

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from fairimage import __version__
from fairimage.model.errors import StorageError
from fairimage.model.federation.checkpoints import public_key_text
from fairimage.model.federation.feed import NodeDocument
from fairimage.settings import Settings
from fairimage.storage import keys

KEY_BYTES = 32


def signing_key(settings: Settings) -> Ed25519PrivateKey:
    """The node's private key, made the first time."""
    path = settings.node_key_path
    raw = keys.read_or_make(path, _new_key, "node's signing key")
    if len(raw) != KEY_BYTES:
        raise StorageError(
            f"{path}: the node's signing key is not {KEY_BYTES} bytes; restore it from a backup"
        )
    return Ed25519PrivateKey.from_private_bytes(raw)


def _new_key() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


def fingerprint(public_key: str) -> str:
    """A short name for a key, to compare by eye: the first 16 hex digits of the sha256 of its bytes."""
    return hashlib.sha256(base64.b64decode(public_key)).hexdigest()[:16]


def node_name(settings: Settings) -> str:
    """The name other nodes know this one by: the node_name setting, else one made from its key."""
    if settings.node_name:
        return settings.node_name
    return "node-" + fingerprint(public_key_text(signing_key(settings)))[:8]


def describe(settings: Settings, base_url: str) -> NodeDocument:
    """What /.well-known/fairimage-node says: who this node is, at the address it was asked at."""
    key = public_key_text(signing_key(settings))
    return NodeDocument(
        name=node_name(settings), url=base_url.rstrip("/"), public_key=key, version=__version__
    )


def sign(settings: Settings, body: bytes) -> str:
    """The node's signature of ``body``, base64."""
    return base64.b64encode(signing_key(settings).sign(body)).decode()
