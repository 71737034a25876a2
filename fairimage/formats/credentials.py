"""C2PA Content Credentials that PNG, JPEG and TIFF files carry: found by a cheap look at the file's
structure (a file without them costs a few small reads), then read and validated offline by c2pa-python,
the Content Authenticity Initiative's own library, and turned into what fairimage keeps of them: whether the
active manifest declares the image AI-generated, by what, and whether the manifest validates."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fairimage.formats.tiff import end_ifd_tags
from fairimage.model.errors import CorruptFileError, UnsupportedError
from fairimage.model.study import Generated

# C2PA 2.x, Appendix A (embedding manifests): a PNG keeps the store in one 'caBX' chunk; a JPEG in APP11
# marker segments holding a JUMBF superbox labelled 'c2pa' (JPEG XT, ISO/IEC 18477-3 and 19566-5); a TIFF in
# tag 0xCD41 of its last IFD (c2pa-rs writes it there and looks in the first IFD too, for older files).
_PNG = b"\x89PNG\r\n\x1a\n"
_JPEG = b"\xff\xd8"
_TIFF = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
C2PA_TIFF_TAG = 0xCD41

# IPTC Digital Source Type NewsCodes (http://cv.iptc.org/newscodes/digitalsourcetype/) that say a model or
# an algorithm made the media: made by a trained model, composited with what one made, or made by an
# algorithm alone. digitalCapture, computationalCapture, algorithmicallyEnhanced ... are acquired media.
IPTC_SOURCE_TYPES = "cv.iptc.org/newscodes/digitalsourcetype"  # after http:// (or https://)
AI_SOURCE_TYPES = frozenset(
    {"trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia", "algorithmicMedia"}
)

# What reading may do: nothing over the network (a remote manifest or an OCSP answer is not fetched).
_OFFLINE = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}
# C2PA 2.x, 14.3: a signer not on a trust list is "untrusted", not invalid; no trust list is configured here,
# so every signer would be untrusted, and that says nothing about the file.
_UNTRUSTED = "signingCredential.untrusted"
# What the commonest failure codes (C2PA 2.x, 15.2) mean for the person ingesting the file.
_MEANING = {
    "assertion.dataHash.mismatch": "the file was changed after it was signed",
    "claimSignature.mismatch": "the signature does not match the manifest",
    "signingCredential.expired": "the signing certificate had expired",
    "signingCredential.revoked": "the signing certificate was revoked",
}


@dataclass(frozen=True)
class ContentCredentials:
    """What a file's C2PA manifest store says of it, as fairimage keeps it."""

    generated: Generated | None  # the active manifest declares algorithmic media: AI-generated, by this
    invalid: str | None = None  # why the manifest does not validate (status codes), if it does not


def embedded_manifest(path: Path) -> str | None:
    """The media type of a PNG, JPEG or TIFF file that embeds a C2PA manifest store, else None; reads a few
    bytes per PNG chunk or JPEG header segment, and the first and last TIFF IFDs."""
    try:
        with path.open("rb") as f:
            head = f.read(8)
            if head == _PNG:
                return "image/png" if _png_has_store(f) else None
            if head.startswith(_JPEG):
                f.seek(2)
                return "image/jpeg" if _jpeg_has_store(f) else None
    except OSError:
        return None
    if head[:4] in _TIFF:
        return "image/tiff" if C2PA_TIFF_TAG in end_ifd_tags(path) else None
    return None


def read_credentials(path: Path) -> ContentCredentials | None:
    """The Content Credentials ``path`` embeds, validated offline; None if it embeds none. Raises
    CorruptFileError for a manifest store that cannot be read, UnsupportedError without c2pa-python."""
    media_type = embedded_manifest(path)
    if media_type is None:
        return None
    try:
        import c2pa
    except ImportError as exc:
        raise UnsupportedError(
            f"{path}: carries a C2PA manifest (Content Credentials) that cannot be read here: the "
            "c2pa-python package is not installed (pip install c2pa-python)"
        ) from exc
    try:
        with (
            c2pa.Context.from_dict(_OFFLINE) as context,
            path.open("rb") as f,
            c2pa.Reader(media_type, f, context=context) as reader,
        ):
            store = json.loads(reader.json())
    except (c2pa.C2paError, OSError, ValueError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CorruptFileError(
            f"{path}: its C2PA manifest (Content Credentials) could not be read ({reason})"
        ) from exc
    return credentials_of(store)


def credentials_of(store: dict[str, Any]) -> ContentCredentials:
    """What a manifest store (c2pa-python's JSON) says: its active manifest's AI-generated declaration, if
    any, and its validation failures."""
    manifests = store.get("manifests") or {}
    active = manifests.get(store.get("active_manifest")) or {}
    return ContentCredentials(_declared(active), _invalid(store))


def _declared(manifest: dict[str, Any]) -> Generated | None:
    """AI-generated by the tool the first action of algorithmic media names (its softwareAgent), else by
    the manifest's claim generator (C2PA 2.x, 18.12: actions and their digitalSourceType)."""
    for assertion in manifest.get("assertions") or []:
        if not str(assertion.get("label", "")).startswith("c2pa.actions"):  # c2pa.actions, .v2, __1 ...
            continue
        for action in (assertion.get("data") or {}).get("actions") or []:
            source_type = str(action.get("digitalSourceType", ""))
            head, _, term = source_type.rpartition("/")
            if head.endswith(IPTC_SOURCE_TYPES) and term in AI_SOURCE_TYPES:
                by = _name(action.get("softwareAgent")) or _generator(manifest) or "an unnamed generator"
                return Generated(by=by, source="c2pa")
    return None


def _generator(manifest: dict[str, Any]) -> str | None:
    """The claim generator: claim_generator_info (C2PA 2.x) or the older claim_generator text."""
    info = manifest.get("claim_generator_info")
    if isinstance(info, list) and info:
        return _name(info[0])
    return _name(manifest.get("claim_generator"))


def _name(agent: Any) -> str | None:
    """A software agent as fairimage names models: name@version (C2PA's ClaimGeneratorInfo), or its text."""
    if isinstance(agent, dict) and agent.get("name"):
        version = agent.get("version")
        return f"{agent['name']}@{version}" if version else str(agent["name"])
    if isinstance(agent, str) and agent.strip():
        return agent.strip()
    return None


def _invalid(store: dict[str, Any]) -> str | None:
    """The failure codes of a store whose validation state is Invalid, each with what it means."""
    if store.get("validation_state") != "Invalid":
        return None
    results = (store.get("validation_results") or {}).get("activeManifest") or {}
    failures = results.get("failure") or store.get("validation_status") or []
    codes = [str(failure.get("code")) for failure in failures if failure.get("code") != _UNTRUSTED]
    if not codes:
        return "invalid"
    return ", ".join(
        f"{code}: {_MEANING[code]}" if code in _MEANING else code for code in dict.fromkeys(codes)
    )


def _png_has_store(f: Any) -> bool:
    """Whether a PNG has a 'caBX' chunk: each chunk's length and type, the data skipped (PNG 5.3)."""
    while header := f.read(8):
        if len(header) < 8:
            return False
        length, kind = struct.unpack(">I4s", header)
        if kind == b"caBX":
            return True
        if kind == b"IEND":
            return False
        f.seek(length + 4, 1)  # the data and its CRC
    return False


def _jpeg_has_store(f: Any) -> bool:
    """Whether a JPEG's header segments, up to the first scan, hold an APP11 segment whose JUMBF box is
    labelled 'c2pa': "JP", box instance and sequence numbers, the 'jumb' box, its 'jumd' with the label."""
    while marker := f.read(2):
        if len(marker) < 2 or marker[0] != 0xFF:
            return False
        kind = marker[1]
        if kind == 0xFF:  # a fill byte before the marker
            f.seek(-1, 1)
            continue
        if kind in (0xD9, 0xDA):  # end of image, start of scan: no more header segments
            return False
        if kind == 0x01 or 0xD0 <= kind <= 0xD7:  # markers without a length
            continue
        size = f.read(2)
        if len(size) < 2:
            return False
        length = struct.unpack(">H", size)[0]
        if length < 2:  # a length counts its own two bytes: the file is damaged
            return False
        if kind == 0xEB:
            payload = f.read(min(length - 2, 64))
            if payload[:2] == b"JP" and payload[12:16] == b"jumb" and b"c2pa" in payload[16:]:
                return True
            f.seek(length - 2 - len(payload), 1)
        else:
            f.seek(length - 2, 1)
    return False
