"""De-identification of a DICOM data set by PS3.15 Annex E (rules in ``model.deid``), done in place on a
pydicom Dataset, recursing into sequences. What it did comes back as a report; the data set records it too
(Patient Identity Removed, De-identification Method and its Code Sequence, Longitudinal Temporal
Information Modified), as E.1.1 asks.

Private attributes are removed unless the Retain Safe Private Option is chosen and the (private creator,
element) pair is on the safe list. UIDs are replaced by keyed hashes, so the same input UID maps to the same
new UID under one repository's key; the key is the caller's (kept outside the catalog).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fairimage.model.privacy import deid
from fairimage.model.privacy.deid import Option, Profile

if TYPE_CHECKING:  # pydicom is imported where a data set is changed, not by every command that imports this
    from pydicom.dataset import Dataset
    from pydicom.tag import BaseTag

_BYTES_VRS = {"OB", "OW", "OD", "OF", "OL", "OV", "UN"}
_NUMBER_VRS = {"US", "SS", "UL", "SL", "UV", "SV", "FL", "FD"}
_TEXT_VRS = {"LO", "LT", "SH", "ST", "UT", "UC", "PN", "AE", "CS"}
# Modalities and SOP classes whose pixels often carry burned-in text (PS3.15 E.3.1): ultrasound, secondary
# and screen captures, documents photographed or scanned.
BURNING_MODALITIES = {"US", "SC", "OT", "XC", "ES", "DOC"}
_SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
_PHONE = re.compile(r"\+?\d[\d\s().-]{7,}\d")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
_DATE = re.compile(r"\b\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}\b|\b(19|20)\d{6}\b")


@dataclass(frozen=True)
class Choice:
    """What the user chose: the profile's options and the private attributes known to be safe, as
    (private creator, element byte) pairs, e.g. ("SIEMENS MED", 0x10)."""

    options: frozenset[Option] = frozenset()
    safe_private: frozenset[tuple[str, int]] = frozenset()


@dataclass
class Report:
    """What de-identification did to one data set."""

    actions: Counter[str] = field(default_factory=Counter)  # action code -> attributes it was applied to
    private_removed: int = 0
    private_kept: int = 0
    date_shift_days: int | None = None
    burned_in: list[str] = field(default_factory=list)  # why the pixels may show identifying text


def burned_in_reasons(dataset: Dataset) -> list[str]:
    """Why this instance's pixels may hold burned-in identifying text, if they may."""
    reasons = []
    if str(dataset.get("BurnedInAnnotation", "")).upper() == "YES":
        reasons.append("Burned In Annotation is YES")
    modality = str(dataset.get("Modality", "")).upper()
    if modality in BURNING_MODALITIES:
        reasons.append(f"modality {modality} often burns text into the pixels")
    sop_class = str(dataset.get("SOPClassUID", ""))
    if sop_class == _SECONDARY_CAPTURE or sop_class.startswith(_SECONDARY_CAPTURE + "."):
        reasons.append("a secondary capture (screen or document capture)")
    return reasons


def deidentify(dataset: Dataset, profile: Profile, key: bytes, choice: Choice | None = None) -> Report:
    """De-identify ``dataset`` in place by ``profile`` and ``choice``; ``key`` makes UIDs, the pseudonym and
    the date shift."""
    choice = choice or Choice()
    report = Report(burned_in=burned_in_reasons(dataset))
    patient_id = str(dataset.get("PatientID", "") or "")
    if Option.RETAIN_MODIFIED_DATES in choice.options and Option.RETAIN_FULL_DATES not in choice.options:
        report.date_shift_days = deid.date_shift(key, patient_id)
    walker = _Walker(profile, key, choice, report, patient_id, _identifiers(dataset))
    walker.walk(dataset)
    meta = getattr(dataset, "file_meta", None)
    if meta is not None and "SOPInstanceUID" in dataset:
        meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    _record(dataset, profile, choice, report)
    return report


_IDENTIFYING = (
    "PatientName",
    "PatientID",
    "OtherPatientNames",
    "PatientBirthName",
    "PatientMotherBirthName",
    "AccessionNumber",
    "ReferringPhysicianName",
    "InstitutionName",
    "PatientAddress",
)


def _identifiers(dataset: Dataset) -> list[str]:
    """The patient's own identifying words, to clean from text the options keep (Clean Descriptors),
    longest first."""
    words: set[str] = set()
    for keyword in _IDENTIFYING:
        for value in _values(dataset.get(keyword)):
            words.update(part for part in re.split(r"[\^=\s,]+", value) if len(part) >= 3)
    birth = str(dataset.get("PatientBirthDate", "") or "")
    if birth:
        words.add(birth)
    return sorted(words, key=len, reverse=True)


def _values(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return [str(item) for item in value]
    return [str(value)]


@dataclass
class _Walker:
    profile: Profile
    key: bytes
    choice: Choice
    report: Report
    patient_id: str
    identifiers: list[str]

    def walk(self, dataset: Dataset) -> None:
        creators: dict[tuple[int, int], str] = {}
        for element in list(dataset):
            tag = element.tag
            if tag.is_private:
                if 0x0010 <= tag.element <= 0x00FF:
                    creators[(tag.group, tag.element)] = str(element.value)
                continue
            row = self.profile.attribute(int(tag))
            if row is None:
                if element.VR == "SQ":
                    self._each_item(element.value)
                continue
            self.apply(dataset, tag, deid.action_for(row, self.choice.options))
        self._private(dataset, creators)

    def _each_item(self, items: Any) -> None:
        for item in items or []:
            self.walk(item)

    def apply(self, dataset: Dataset, tag: BaseTag, action: str) -> None:
        element = dataset[tag]
        self.report.actions[action] += 1
        vr = element.VR
        if action == "X":
            del dataset[tag]
        elif action == "Z":
            from pydicom.sequence import Sequence as DicomSequence

            element.value = DicomSequence() if vr == "SQ" else _empty(vr)
        elif action in ("K", "U*") or (vr == "SQ" and action in ("D", "C")):
            if vr == "SQ":
                self._each_item(element.value)
        elif action == "U" or (action == "D" and vr == "UI"):
            element.value = _map(element.value, lambda uid: deid.replacement_uid(self.key, uid))
        elif action == "D":
            element.value = self._dummy(tag, vr)
        elif action == "C":
            element.value = self._clean(vr, element.value)

    def _dummy(self, tag: BaseTag, vr: str) -> Any:
        from pydicom.tag import Tag

        if tag == Tag("PatientID"):
            return deid.pseudonym(self.key, self.patient_id)
        if vr in ("DA", "DT") and self.report.date_shift_days is not None:
            return deid.DUMMY[vr]
        if vr in _BYTES_VRS:
            return b"\x00\x00"
        if vr in _NUMBER_VRS:
            return 0
        return deid.DUMMY.get(vr, "ANONYMIZED")

    def _clean(self, vr: str, value: Any) -> Any:
        """C: a value of similar meaning without identifying information: dates moved by the patient's
        shift, free text without the patient's own identifiers and contact details, the rest as is."""
        days = self.report.date_shift_days
        if vr == "DA":
            return _map(value, lambda text: deid.shift_da(text, days) if days else text)
        if vr == "DT":
            return _map(value, lambda text: deid.shift_dt(text, days) if days else text)
        if vr in _TEXT_VRS:
            return _map(value, self._clean_text)
        return value

    def _clean_text(self, text: str) -> str:
        cleaned = str(text)
        for word in self.identifiers:
            cleaned = re.sub(re.escape(word), "", cleaned, flags=re.IGNORECASE)
        for pattern in (_EMAIL, _PHONE, _DATE):
            cleaned = pattern.sub("", cleaned)
        return re.sub(r"\s{2,}", " ", cleaned).strip()

    def _private(self, dataset: Dataset, creators: dict[tuple[int, int], str]) -> None:
        """Private attributes go, except safe-listed ones under the Retain Safe Private Option; a private
        creator stays only while an element it reserves stays."""
        keep_safe = Option.RETAIN_SAFE_PRIVATE in self.choice.options
        used: set[tuple[int, int]] = set()
        for element in list(dataset):
            tag = element.tag
            if not tag.is_private or 0x0010 <= tag.element <= 0x00FF:
                continue
            block = (tag.group, tag.element >> 8)
            creator = creators.get(block, "")
            if keep_safe and (creator, tag.element & 0xFF) in self.choice.safe_private:
                used.add(block)
                self.report.private_kept += 1
                if element.VR == "SQ":
                    self._each_item(element.value)
                continue
            del dataset[tag]
            self.report.private_removed += 1
        for element in list(dataset):
            tag = element.tag
            if tag.is_private and (tag.element <= 0x00FF) and (tag.group, tag.element) not in used:
                del dataset[tag]


def _empty(vr: str) -> Any:
    if vr in _BYTES_VRS:
        return b""
    if vr in _NUMBER_VRS:
        return None
    return ""


def _map(value: Any, change: Any) -> Any:
    """Apply ``change`` to each value of a multi-valued element (or to the one value)."""
    if value is None or value == "":
        return value
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return [change(str(item)) for item in value]
    return change(str(value))


def _record(dataset: Dataset, profile: Profile, choice: Choice, report: Report) -> None:
    """E.1.1: the instance says it was de-identified, how, and what became of its dates."""
    dataset.PatientIdentityRemoved = "YES"
    dataset.DeidentificationMethod = deid.method_description(profile.edition, choice.options)
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence as DicomSequence

    codes = DicomSequence()
    for value, meaning in deid.method_codes(choice.options):
        item = Dataset()
        item.CodeValue = value
        item.CodingSchemeDesignator = "DCM"
        item.CodeMeaning = meaning
        codes.append(item)
    dataset.DeidentificationMethodCodeSequence = codes
    if Option.RETAIN_FULL_DATES in choice.options:
        dataset.LongitudinalTemporalInformationModified = "UNMODIFIED"
    elif report.date_shift_days is not None:
        dataset.LongitudinalTemporalInformationModified = "MODIFIED"
    else:
        dataset.LongitudinalTemporalInformationModified = "REMOVED"
