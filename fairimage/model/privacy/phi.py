"""A scanner for protected health information in free text (descriptions, annotations, DICOM text that is
kept, file names): names, dates of birth and other dates, record numbers, phone numbers, e-mail and postal
addresses. Pattern rules, no model: it says where and why, so a steward can judge.

It is tuned to warn rather than miss: a finding is a reason to look, not proof of identity. Its precision
and recall on generated, labelled examples are measured by tests/test_phi.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fairimage.model.errors import ConflictError

_MONTHS = (
    "jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|"
    "oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
)
_DATE = (
    r"(?:\d{1,2}[/.-]\d{1,2}[/.-](?:19|20)?\d{2}"
    r"|(?:19|20)\d{2}[/.-]\d{1,2}[/.-]\d{1,2}"
    r"|(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:{_MONTHS})\.?,?\s+(?:19|20)\d{{2}}"
    rf"|(?:{_MONTHS})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+(?:19|20)\d{{2}})"
)
_UPPER, _LOWER = "A-ZÀ-ÖØ-Þ", "a-zß-öø-ÿ"
# A capitalised name, with accents, O'Brien, McDonald and Anna-Lena.
_NAME = rf"[{_UPPER}](?:'[{_UPPER}])?[{_LOWER}]+(?:[{_UPPER}][{_LOWER}]+)?(?:-[{_UPPER}][{_LOWER}]+)?"
_STREETS = (
    "street|st|road|rd|avenue|ave|lane|ln|drive|dr|boulevard|blvd|way|court|ct|place|pl|terrace|close|"
    "crescent|square|sq|strasse|straße|weg|gasse|rue|via|calle"
)
RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("email", re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")),
    (
        "date_of_birth",
        re.compile(rf"\b(?:d\.?o\.?b\.?|date of birth|birth ?date|born(?: on)?)\s*[:=]?\s*{_DATE}", re.I),
    ),
    (
        "record_number",
        re.compile(
            r"\b(?:mrn|medical record(?: number| no\.?)?|record (?:number|no\.?)|patient (?:id|number|no\.?)|"
            r"hospital (?:number|no\.?)|nhs (?:number|no\.?)|ssn|social security(?: number)?)\s*[:#=]?\s*"
            r"[A-Z]{0,3}[-\s]?\d[\d -]{3,}\d\b",
            re.I,
        ),
    ),
    (
        "phone",
        re.compile(
            r"(?:(?<=\s)|^|(?<=[:(]))(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?|\d{2,4}[\s.-])\d{3,4}[\s.-]\d{3,4}\b"
        ),
    ),
    (
        "address",
        re.compile(
            rf"\b\d{{1,5}}[a-z]?,?\s+(?:(?:{_NAME}\s+){{1,3}}(?:{_STREETS})\b\.?"
            rf"|(?:rue|via|calle|avenida|avenue|boulevard|place)\s+(?:(?:de|du|la|del|di)\s+)?{_NAME}"
            rf"|[{_UPPER}][{_LOWER}]+(?:strasse|straße|weg|gasse|allee|platz))"
            rf"|\b[{_UPPER}][{_LOWER}]+(?:strasse|straße|weg|gasse|allee|platz)\s+\d{{1,4}}[a-z]?\b",
            re.I,
        ),
    ),
    ("postcode", re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s+\d[A-Z]{2}\b|\b[A-Z]{2}\s+\d{5}(?:-\d{4})?\b")),
    (
        "name",
        re.compile(
            rf"\b(?:(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Dame)\.?\s+{_NAME}(?:\s+{_NAME})?"
            rf"|(?i:patient|pt|name|subject|donor|mother|father|referred by|referring physician)\s*[:=]?\s*"
            rf"{_NAME}(?:\s+{_NAME})+)"
        ),
    ),
    # DICOM PN, as it leaks into text: SMITH^JOHN
    ("name", re.compile(rf"\b[{_UPPER}][{_UPPER}'-]+\^[{_UPPER}][{_UPPER}'-]+(?:\^[{_UPPER}'-]*)*")),
    ("date", re.compile(rf"\b{_DATE}\b", re.I)),
    ("identifier", re.compile(r"(?<![\w.])\d{7,12}(?![\w.])")),
)
# Words that look like names after a cue but are not ("Patient Positioning", "Name Sorting").
_NOT_NAMES = {"positioning", "position", "sorting", "orientation", "data", "model", "sample", "samples"}


@dataclass(frozen=True)
class Finding:
    """What looks identifying, where: ``kind`` (name, date_of_birth, date, record_number, phone, email,
    address, postcode, identifier), the matched text and its span."""

    kind: str
    text: str
    start: int
    end: int

    def __str__(self) -> str:
        return f"{self.kind} {self.text!r}"


def scan(text: str) -> list[Finding]:
    """Every finding in ``text``, in order; where rules overlap the first rule (the more specific) wins."""
    found: list[Finding] = []
    taken: list[tuple[int, int]] = []
    for kind, pattern in RULES:
        for match in pattern.finditer(text):
            start, end = match.span()
            if any(start < other_end and other_start < end for other_start, other_end in taken):
                continue
            if kind == "name" and match.group(0).split()[-1].lower() in _NOT_NAMES:
                continue
            taken.append((start, end))
            found.append(Finding(kind, match.group(0), start, end))
    return sorted(found, key=lambda finding: finding.start)


def scan_fields(fields: dict[str, str]) -> list[tuple[str, Finding]]:
    """Findings per named field (a REMBI path, an annotation, a file name)."""
    return [(name, finding) for name, value in fields.items() if value for finding in scan(value)]


def check_publishable(study: str, held: dict[str, Any] | None) -> None:
    """Refuse to publish a study whose PHI findings (``held``, as kept with the study) no steward has
    acknowledged."""
    findings = (held or {}).get("findings") or []
    if findings and not (held or {}).get("acknowledged"):
        first = findings[0]
        raise ConflictError(
            f"study {study!r}: the PHI scanner found {len(findings)} possible personal identifier(s), "
            f"e.g. {first['field']}: {first['finding']}; remove them, or a steward acknowledges them with "
            f"'fairimage study acknowledge-phi {study!r} --note ...'"
        )
