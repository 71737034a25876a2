"""De-identification rules of DICOM PS3.15 Annex E (the Basic Application Level Confidentiality Profile and
its options), as plain functions on plain data; ``formats.deid`` applies them to a DICOM data set.

The table (which action for which attribute, Table E.1-1) is data bundled with its edition
(``fairimage/ontology/dicom_deid.json``, rebuilt by ``scripts/build_deid_profile.py``). Action codes, PS3.15
E.1.1: D replace with a dummy value, Z with a zero-length (or dummy) value, X remove, K keep, C clean (a value
of similar meaning without identifying information), U replace a UID by one consistent across the data.
Combined codes (X/Z, X/D, Z/D, X/Z/D, X/Z/U*) let the de-identifier keep an attribute a module requires:
fairimage keeps it, replaced (D or U where allowed, else Z), so the output stays a conformant instance.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum


class Option(StrEnum):
    """The profile's options a user may choose (PS3.15 E.3), by the keys of Table E.1-1's columns."""

    RETAIN_SAFE_PRIVATE = "rtnSafePrivOpt"
    RETAIN_UIDS = "rtnUIDsOpt"
    RETAIN_DEVICE_IDENTITY = "rtnDevIdOpt"
    RETAIN_INSTITUTION_IDENTITY = "rtnInstIdOpt"
    RETAIN_PATIENT_CHARACTERISTICS = "rtnPatCharsOpt"
    RETAIN_FULL_DATES = "rtnLongFullDatesOpt"
    RETAIN_MODIFIED_DATES = "rtnLongModifDatesOpt"
    CLEAN_DESCRIPTORS = "cleanDescOpt"
    CLEAN_STRUCTURED_CONTENT = "cleanStructContOpt"
    CLEAN_GRAPHICS = "cleanGraphOpt"


# PS3.16 CID 7050 De-identification Method: the codes recorded in De-identification Method Code Sequence.
METHOD_CODES: dict[Option | None, tuple[str, str]] = {
    None: ("113100", "Basic Application Confidentiality Profile"),
    Option.CLEAN_GRAPHICS: ("113103", "Clean Graphics Option"),
    Option.CLEAN_STRUCTURED_CONTENT: ("113104", "Clean Structured Content Option"),
    Option.CLEAN_DESCRIPTORS: ("113105", "Clean Descriptors Option"),
    Option.RETAIN_FULL_DATES: ("113106", "Retain Longitudinal Temporal Information Full Dates Option"),
    Option.RETAIN_MODIFIED_DATES: (
        "113107",
        "Retain Longitudinal Temporal Information Modified Dates Option",
    ),
    Option.RETAIN_PATIENT_CHARACTERISTICS: ("113108", "Retain Patient Characteristics Option"),
    Option.RETAIN_DEVICE_IDENTITY: ("113109", "Retain Device Identity Option"),
    Option.RETAIN_UIDS: ("113110", "Retain UIDs Option"),
    Option.RETAIN_SAFE_PRIVATE: ("113111", "Retain Safe Private Option"),
    Option.RETAIN_INSTITUTION_IDENTITY: ("113112", "Retain Institution Identity Option"),
}
# Options that keep what the Basic Profile removes come after those that clean, so that where two chosen
# options name one attribute, the one that keeps more wins (a user who retains full dates keeps them).
_PRECEDENCE = (
    Option.CLEAN_GRAPHICS,
    Option.CLEAN_STRUCTURED_CONTENT,
    Option.CLEAN_DESCRIPTORS,
    Option.RETAIN_SAFE_PRIVATE,
    Option.RETAIN_MODIFIED_DATES,
    Option.RETAIN_PATIENT_CHARACTERISTICS,
    Option.RETAIN_DEVICE_IDENTITY,
    Option.RETAIN_INSTITUTION_IDENTITY,
    Option.RETAIN_UIDS,
    Option.RETAIN_FULL_DATES,
)
PRIVATE_ROW = "ggggeeee-where-gggg-is-odd"


@dataclass(frozen=True)
class ProfileAttribute:
    tag: str  # 8 hex digits, lower case, 'x' for any digit (repeating groups: 60xx3000)
    name: str
    action: str  # the Basic Profile's code: D, Z, X, U, X/Z, X/D, Z/D, X/Z/D, X/Z/U*
    options: dict[str, str] = field(default_factory=dict)  # option key -> its code (K or C)


class Profile:
    """Table E.1-1 of one edition of the standard, looked up by tag (repeating groups by their mask)."""

    def __init__(self, edition: str, attributes: tuple[ProfileAttribute, ...]) -> None:
        self.edition = edition
        self.attributes = attributes
        rows = [a for a in attributes if a.tag != PRIVATE_ROW]
        self._exact = {a.tag: a for a in rows if "x" not in a.tag}
        self._masked = [
            (int(a.tag.replace("x", "0"), 16), int("".join("0" if c == "x" else "f" for c in a.tag), 16), a)
            for a in rows
            if "x" in a.tag
        ]
        self.private = next((a for a in attributes if a.tag == PRIVATE_ROW), None)

    def attribute(self, tag: int) -> ProfileAttribute | None:
        """The row for a public tag, given as an int ``0xggggeeee``."""
        found = self._exact.get(f"{tag:08x}")
        if found is not None:
            return found
        return next((row for value, mask, row in self._masked if tag & mask == value), None)


def action_for(attribute: ProfileAttribute, options: frozenset[Option]) -> str:
    """The one action to take: the chosen option's code where the table gives one (the option that keeps
    more wins), else the Basic Profile's, with a combined code resolved to keep the attribute present."""
    chosen = None
    for option in _PRECEDENCE:
        if option in options and option.value in attribute.options:
            chosen = attribute.options[option.value]
    if chosen is not None:
        return chosen
    return resolve(attribute.action)


def resolve(code: str) -> str:
    """A combined Basic Profile code as fairimage applies it: keep the attribute, replaced, where the code
    allows (D, else U*, else Z), so Type 1 and 2 attributes stay present; X only where X alone is given."""
    parts = code.split("/")
    for preferred in ("D", "U*", "U", "Z"):
        if preferred in parts:
            return preferred
    return parts[0]


def keyed_digest(key: bytes, purpose: str, value: str) -> bytes:
    """HMAC-SHA256 of ``value`` for one purpose: the same input gives the same output under one key, and
    nothing about the input can be learnt without the key."""
    return hmac.new(key, f"{purpose}\x00{value}".encode(), hashlib.sha256).digest()


def replacement_uid(key: bytes, uid: str) -> str:
    """A new UID for ``uid``, the same every time under one key (series and studies still fit together):
    PS3.5 B.2's UUID-derived form, 2.25 followed by a 128-bit integer."""
    return "2.25." + str(int.from_bytes(keyed_digest(key, "uid", uid)[:16], "big"))


def pseudonym(key: bytes, patient_id: str) -> str:
    """The Patient ID a patient gets: stable under one key, no trace of the original."""
    return "FI" + keyed_digest(key, "patient", patient_id).hex()[:14].upper()


def date_shift(key: bytes, patient_id: str) -> int:
    """Days to move a patient's dates back (Retain Longitudinal Temporal Information with Modified Dates):
    between 1 and 3,650, the same for every instance of the patient, so intervals are kept."""
    return 1 + int.from_bytes(keyed_digest(key, "dates", patient_id)[:4], "big") % 3650


_DA = re.compile(r"^(\d{4})(\d{2})(\d{2})")


def shift_da(value: str, days: int) -> str:
    """A DA value (YYYYMMDD) ``days`` earlier; a value that is not a date becomes the dummy date."""
    match = _DA.match(value.strip())
    if match is None:
        return DUMMY["DA"]
    try:
        moved = date(int(match.group(1)), int(match.group(2)), int(match.group(3))) - timedelta(days=days)
    except ValueError:
        return DUMMY["DA"]
    return moved.strftime("%Y%m%d")


def shift_dt(value: str, days: int) -> str:
    """A DT value with its date part moved; the time of day and offset stay."""
    text = value.strip()
    return shift_da(text[:8], days) + text[8:] if len(text) >= 8 else DUMMY["DT"]


# Dummy values by VR (D), valid for the VR's length and character rules.
DUMMY: dict[str, str] = {
    "AE": "ANONYMOUS",
    "AS": "000Y",
    "CS": "ANONYMIZED",
    "DA": "19000101",
    "DS": "0",
    "DT": "19000101000000",
    "IS": "0",
    "LO": "ANONYMIZED",
    "LT": "ANONYMIZED",
    "PN": "ANONYMIZED",
    "SH": "ANONYMIZED",
    "ST": "ANONYMIZED",
    "TM": "000000",
    "UC": "ANONYMIZED",
    "UR": "http://example.invalid/",
    "UT": "ANONYMIZED",
}


def method_description(edition: str, options: frozenset[Option]) -> str:
    """De-identification Method (0012,0063): what was done, in words (LO: at most 64 characters per value;
    the sequence of codes carries the detail)."""
    return f"fairimage PS3.15-{edition} Basic Profile" + (f" +{len(options)} options" if options else "")


def method_codes(options: frozenset[Option]) -> list[tuple[str, str]]:
    """The CID 7050 codes of the profile and each chosen option, in the order of the table's columns."""
    return [METHOD_CODES[None], *(METHOD_CODES[o] for o in Option if o in options and o in METHOD_CODES)]
