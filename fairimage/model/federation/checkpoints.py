"""C2SP checkpoints (tlog-checkpoint), signed notes (signed-note) and witness cosignatures (tlog-cosignature).

A checkpoint commits the log to its size and Merkle root; the log signs it as a signed note with Ed25519, and
witnesses add cosignature/v1 lines saying they saw it consistent with every earlier checkpoint they saw.
Pure functions over text and keys: storing keys and fetching notes is for the callers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from fairimage.model.errors import InvalidInputError

ROOT_SIZE = 32
KEY_SIZE = 32
ED25519_SIGNATURE_SIZE = 64
KEY_ID_SIZE = 4  # signed-note §Format: "the uint32 key ID stored in big-endian order"
MAX_SIGNATURES = 100  # signed-note §Format: verifiers SHOULD cap the count and MUST accept at least 16
MAX_TIMESTAMP = 2**63 - 1  # tlog-cosignature §Format: "It MUST NOT exceed 2^63 - 1"
MAX_SIZE = 2**64 - 1  # tree sizes are uint64 in every tlog spec

ED25519 = 0x01  # signed-note §Signature types: Ed25519 note signatures
COSIGNATURE_V1 = 0x04  # signed-note §Signature types: timestamped Ed25519 witness cosignatures

_EM_DASH = "\u2014"  # signed-note §Format: a signature line starts with an em dash and a space
_COSIGNATURE_HEADER = "cosignature/v1\n"  # tlog-cosignature §Ed25519 signed message: domain separation
_DECIMAL = re.compile(r"0|[1-9][0-9]*")  # tlog-checkpoint §Note text: ASCII decimal, no leading zeroes
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")  # signed-note §Format: no control characters but newline
_SPACE_OR_PLUS = re.compile(r"[\s+]")  # signed-note §Format: key names have no Unicode spaces or '+'


class CheckpointError(InvalidInputError, ValueError):
    """A checkpoint, note, signature or key that cannot be used; the message names what is wrong."""


# --- encodings ---


def _b64decode(text: str, what: str) -> bytes:
    """Standard base64 (RFC 4648 §4, as signed-note says), canonical only: one encoding per value."""
    try:
        raw = binascii.a2b_base64(text.encode("ascii"), strict_mode=True)
    except (UnicodeEncodeError, binascii.Error) as err:
        raise CheckpointError(f"{what} is not base64: {text!r:.80}") from err
    if base64.b64encode(raw).decode("ascii") != text:
        raise CheckpointError(f"{what} is not canonical base64: {text!r:.80}")
    return raw


def _utf8(text: str, what: str) -> bytes:
    """The UTF-8 bytes that are signed; signed-note §Format: notes MUST be valid UTF-8 without controls."""
    if _CONTROL.search(text):
        raise CheckpointError(f"malformed {what}: it contains a control character other than newline")
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise CheckpointError(f"malformed {what}: it is not valid UTF-8") from err


def _check_key_name(name: str) -> None:
    """signed-note §Format: key names MUST be non-empty with no Unicode spaces or plus signs."""
    if not name or _SPACE_OR_PLUS.search(name):
        raise CheckpointError(f"bad key name {name!r:.80}: it must be non-empty, without spaces or '+'")
    _utf8(name, "key name")


# --- checkpoints ---


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head at one size (tlog-checkpoint §Note text); ``extensions`` are its optional lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Refuse a checkpoint whose body could not be parsed back to the same values."""
        for line in (self.origin, *self.extensions):
            if not line or "\n" in line or _CONTROL.search(line):
                raise CheckpointError(f"malformed checkpoint body: bad line {line!r:.80}")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or not 0 <= self.size <= MAX_SIZE:
            raise CheckpointError(f"checkpoint size is not a number from 0 to 2^64-1: {self.size!r:.80}")
        if not isinstance(self.root, bytes) or len(self.root) != ROOT_SIZE:
            raise CheckpointError(f"checkpoint root is not {ROOT_SIZE} bytes: {self.root!r:.80}")

    def body(self) -> str:
        """The note text: origin, decimal size, base64 root, any extension lines, each ending in newline."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode("ascii"), *self.extensions]
        return "".join(f"{line}\n" for line in lines)

    @classmethod
    def parse(cls, body: str) -> Checkpoint:
        """Read a note text written by ``body()`` (tlog-checkpoint §Note text), naming what is malformed."""
        if not body.endswith("\n"):
            raise CheckpointError("malformed checkpoint body: it must end with a newline")
        lines = body[:-1].split("\n")
        if len(lines) < 3 or not all(lines):
            raise CheckpointError("malformed checkpoint body: expected non-empty origin, size and root lines")
        origin, size, root, *extensions = lines
        if not _DECIMAL.fullmatch(size):
            raise CheckpointError(f"checkpoint size is not a number: {size!r:.80}")
        return cls(origin, int(size), _b64decode(root, "checkpoint root"), tuple(extensions))


# --- signed notes ---


def key_id(name: str, signature_type: int, public_key: Ed25519PublicKey) -> bytes:
    """signed-note §Signatures: SHA-256(key name || 0x0A || signature type || public key)[:4]."""
    material = name.encode("utf-8") + b"\n" + bytes([signature_type]) + _raw_public(public_key)
    return hashlib.sha256(material).digest()[:KEY_ID_SIZE]


def _raw_public(key: Ed25519PublicKey) -> bytes:
    """The 32-byte RFC 8032 encoding of a public key."""
    return key.public_bytes_raw()


def _signature_line(name: str, payload: bytes) -> str:
    """signed-note §Signatures: "— <key name> base64(32-bit key ID || signature)" and a newline."""
    return f"{_EM_DASH} {name} {base64.b64encode(payload).decode('ascii')}\n"


def _parse_signature_line(line: str) -> tuple[str, bytes]:
    """The key name and decoded payload (key ID || signature) of one signature line without its newline."""
    prefix = f"{_EM_DASH} "
    parts = line.removeprefix(prefix).split(" ")
    if not line.startswith(prefix) or len(parts) != 2:
        raise CheckpointError(f"malformed signature line: {line!r:.80}")
    name, encoded = parts
    _check_key_name(name)
    payload = _b64decode(encoded, f"the signature by {name}")
    if len(payload) <= KEY_ID_SIZE:
        raise CheckpointError(f"malformed signature line: the signature by {name} is too short")
    return name, payload


def _split_note(text: str) -> tuple[str, list[tuple[str, bytes]]]:
    """Note text and signatures; signed-note §Format: the text ends at the note's last empty line."""
    _utf8(text, "note")
    cut = text.rfind("\n\n")
    if cut < 0 or not text.endswith("\n"):
        raise CheckpointError("malformed note: expected text, a blank line, then signature lines")
    lines = text[cut + 2 : -1].split("\n")
    if not lines[0] or len(lines) > MAX_SIGNATURES:
        raise CheckpointError(f"malformed note: expected 1 to {MAX_SIGNATURES} signature lines")
    return text[: cut + 1], [_parse_signature_line(line) for line in lines]


def sign_note(body: str, name: str, private_key: Ed25519PrivateKey) -> str:
    """A signed note: ``body``, a blank line, an Ed25519 signature line (signed-note §Ed25519 signatures)."""
    _check_key_name(name)
    message = _utf8(body, "note text")
    if not body.endswith("\n"):
        raise CheckpointError("malformed note text: it must end with a newline")
    payload = key_id(name, ED25519, private_key.public_key()) + private_key.sign(message)
    return f"{body}\n{_signature_line(name, payload)}"


def open_note(text: str, name: str, public_key: Ed25519PublicKey) -> Checkpoint:
    """The checkpoint in a signed note, once a signature by (name, public_key) is found and verifies.

    signed-note §Signatures: other keys' signatures are ignored; a failing one by this key rejects the note.
    """
    _check_key_name(name)
    body, signatures = _split_note(text)
    expected = key_id(name, ED25519, public_key)
    ours = [payload for signer, payload in signatures if signer == name and payload[:KEY_ID_SIZE] == expected]
    if not ours:
        raise CheckpointError(f"the note has no signature by {name} (key ID {expected.hex()})")
    for payload in ours:
        _verify(public_key, payload[KEY_ID_SIZE:], body.encode("utf-8"), f"bad signature by {name}")
    return Checkpoint.parse(body)


def _verify(public_key: Ed25519PublicKey, signature: bytes, message: bytes, failure: str) -> None:
    """Check one Ed25519 signature, raising CheckpointError(failure) if it does not verify."""
    if len(signature) != ED25519_SIGNATURE_SIZE:
        raise CheckpointError(f"{failure}: an Ed25519 signature is {ED25519_SIGNATURE_SIZE} bytes")
    try:
        public_key.verify(signature, message)
    except InvalidSignature as err:
        raise CheckpointError(f"{failure}: the text was changed or signed by another key") from err


# --- cosignatures ---


def _cosigned_message(checkpoint: Checkpoint, timestamp: int) -> bytes:
    """tlog-cosignature §Ed25519 signed message: "cosignature/v1", "time <t>", then the checkpoint body."""
    return f"{_COSIGNATURE_HEADER}time {timestamp}\n{checkpoint.body()}".encode()


def _check_timestamp(timestamp: int) -> None:
    """tlog-cosignature §Format: a POSIX timestamp in seconds, at most 2^63 - 1."""
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or not 0 <= timestamp <= MAX_TIMESTAMP:
        raise CheckpointError(f"cosignature timestamp is not a number from 0 to 2^63-1: {timestamp!r:.80}")


def cosign(
    checkpoint: Checkpoint, witness_name: str, witness_private_key: Ed25519PrivateKey, timestamp: int
) -> str:
    """A witness's cosignature/v1 signature line for ``checkpoint`` at ``timestamp`` (unix seconds).

    tlog-cosignature §Format: base64(key ID with type 0x04 || u64 big-endian timestamp || Ed25519 signature).
    """
    _check_key_name(witness_name)
    _check_timestamp(timestamp)
    signature = witness_private_key.sign(_cosigned_message(checkpoint, timestamp))
    key = key_id(witness_name, COSIGNATURE_V1, witness_private_key.public_key())
    return _signature_line(witness_name, key + timestamp.to_bytes(8, "big") + signature)


def verify_cosignature(
    checkpoint: Checkpoint, line: str, witness_name: str, witness_public_key: Ed25519PublicKey
) -> int:
    """The timestamp of a witness's cosignature line over ``checkpoint``; CheckpointError if it is not one."""
    _check_key_name(witness_name)
    single = line.removesuffix("\n")
    if "\n" in single:
        raise CheckpointError("malformed signature line: expected a single cosignature line")
    signer, payload = _parse_signature_line(single)
    expected = key_id(witness_name, COSIGNATURE_V1, witness_public_key)
    if signer != witness_name or payload[:KEY_ID_SIZE] != expected:
        raise CheckpointError(f"the line is not a cosignature by {witness_name} (key ID {expected.hex()})")
    if len(payload) != KEY_ID_SIZE + 8 + ED25519_SIGNATURE_SIZE:
        raise CheckpointError(
            f"bad cosignature by {witness_name}: expected a timestamp and an Ed25519 signature"
        )
    timestamp = int.from_bytes(payload[KEY_ID_SIZE : KEY_ID_SIZE + 8], "big")
    _check_timestamp(timestamp)
    message = _cosigned_message(checkpoint, timestamp)
    _verify(witness_public_key, payload[KEY_ID_SIZE + 8 :], message, f"bad cosignature by {witness_name}")
    return timestamp


# --- keys ---


def new_signing_key() -> Ed25519PrivateKey:
    """A fresh Ed25519 key for a log or a witness."""
    return Ed25519PrivateKey.generate()


def public_key_text(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The base64 of the 32 raw public key bytes (RFC 8032), the form a peer configures."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return base64.b64encode(_raw_public(public)).decode("ascii")


def load_public_key(text: str) -> Ed25519PublicKey:
    """Read ``public_key_text`` output back, raising CheckpointError for anything but 32 base64 bytes."""
    raw = _b64decode(text.strip(), "public key")
    if len(raw) != KEY_SIZE:
        raise CheckpointError(f"public key is not {KEY_SIZE} bytes: got {len(raw)}")
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as err:
        raise CheckpointError(f"public key is not an Ed25519 key: {err}") from err
