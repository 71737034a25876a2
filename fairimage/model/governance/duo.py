"""GA4GH Data Use Ontology (DUO): a study's consent terms, a user's research purpose, and whether one
admits the other.

A restricted study carries one data use *permission* (NRES, GRU, HMB, DS with diseases, POA) and any
number of *modifiers* (NPU, NCU, PUB, IRB, GS ...). An access request states its research purpose in the
same terms. ``match`` applies DUO's semantics, following the permission hierarchy of the ontology (GRU
above HMB above DS; GRU above POA) and the business rules of the Broad's DUOS matcher (the reference
implementation behind DUO): a DS:cancer dataset admits research on cancer or a kind of cancer, not GRU or
HMB research; an HMB dataset admits HMB and DS research, not population-origins research; NMDS admits
methods development only within the consented disease; NPU/NCU refuse for-profit organisations /
commercial use. Modifiers that are obligations (PUB, COL, RTN, MOR, TS) must be accepted by the applicant,
IRB needs an approval reference, and GS/IS/PS/RS need the applicant's region, institution, project or
research type to be one the study names.

The vocabulary itself (term ids, labels, definitions, release) is bundled by ``fairimage.ontology``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from fairimage.model.errors import InvalidInputError

NRES = "DUO:0000004"
GRU = "DUO:0000042"
HMB = "DUO:0000006"
DS = "DUO:0000007"
POA = "DUO:0000011"
NMDS = "DUO:0000015"
GSO = "DUO:0000016"
NPUNCU = "DUO:0000018"
PUB = "DUO:0000019"
COL = "DUO:0000020"
IRB = "DUO:0000021"
GS = "DUO:0000022"
MOR = "DUO:0000024"
TS = "DUO:0000025"
US = "DUO:0000026"
PS = "DUO:0000027"
IS = "DUO:0000028"
RTN = "DUO:0000029"
RS = "DUO:0000012"
CC = "DUO:0000043"
NPOA = "DUO:0000044"
NPU = "DUO:0000045"
NCU = "DUO:0000046"
OBLIGATIONS = (PUB, COL, RTN, MOR, TS)  # what the applicant agrees to do, not who they are

_DUO_ID = re.compile(r"^(?:https?://purl\.obolibrary\.org/obo/|obo:)?DUO[:_](\d{7,8})$", re.IGNORECASE)
_DISEASE = re.compile(r"^(MONDO|DOID):\d{7}$|^DOID:\d+$")


class TermKind(StrEnum):
    PERMISSION = "permission"
    MODIFIER = "modifier"


@dataclass(frozen=True)
class Term:
    id: str
    shorthand: str
    label: str
    definition: str
    kind: TermKind
    parent: str

    @property
    def iri(self) -> str:
        return "http://purl.obolibrary.org/obo/" + self.id.replace(":", "_")


def normalise_id(text: str) -> str | None:
    """``DUO:0000042``, ``DUO_0000042``, ``obo:DUO_0000042``, the term's IRI, or the extra-digit form
    some OWL releases write (``DUO_00000042``), all as ``DUO:0000042``; None if it is no DUO id."""
    match = _DUO_ID.match(text.strip())
    if match is None:
        return None
    digits = match.group(1)
    if len(digits) == 8 and not digits.startswith("0"):
        return None
    return f"DUO:{int(digits):07d}"


@dataclass(frozen=True)
class Vocabulary:
    """One dated DUO release: its terms and the permission hierarchy."""

    version: str
    version_iri: str
    license: str
    terms: tuple[Term, ...]

    def term(self, text: str, kind: TermKind | None = None) -> Term:
        """A term by id (any of the spellings ``normalise_id`` takes) or by shorthand (``HMB``)."""
        wanted = normalise_id(text)
        for term in self.terms:
            if term.id == wanted or (term.shorthand and term.shorthand.lower() == text.strip().lower()):
                if kind is not None and term.kind is not kind:
                    raise InvalidInputError(
                        f"{text}: {term.shorthand} is a data use {term.kind}, not a {kind}; "
                        f"{self._choices(kind)}"
                    )
                return term
        raise InvalidInputError(
            f"{text!r} is not a DUO {kind or 'term'} (DUO release {self.version}); {self._choices(kind)}"
        )

    def is_a(self, term_id: str, ancestor_id: str) -> bool:
        """Whether ``term_id`` is ``ancestor_id`` or below it in the permission hierarchy."""
        parents = {term.id: term.parent for term in self.terms}
        current: str | None = term_id
        while current is not None:
            if current == ancestor_id:
                return True
            current = parents.get(current)
        return False

    def shorthand(self, term_id: str) -> str:
        return next((term.shorthand for term in self.terms if term.id == term_id), term_id)

    def _choices(self, kind: TermKind | None) -> str:
        names = [term.shorthand for term in self.terms if kind is None or term.kind is kind]
        return "use one of " + ", ".join(names)


class DataUse(BaseModel):
    """A study's consent terms in DUO: one permission, its modifiers and their parameters."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    permission: str = Field(description="DUO data use permission, e.g. DUO:0000006 (HMB)")
    modifiers: tuple[str, ...] = Field(default=(), description="DUO data use modifiers, e.g. DUO:0000045")
    diseases: tuple[str, ...] = Field(default=(), description="MONDO terms of a DS permission")
    regions: tuple[str, ...] = Field(default=(), description="GS: where the data may be used")
    institutions: tuple[str, ...] = Field(default=(), description="IS: institutions approved for use")
    projects: tuple[str, ...] = Field(default=(), description="PS: projects approved for use")
    research_types: tuple[str, ...] = Field(default=(), description="RS: research types allowed")
    months: int | None = Field(default=None, ge=1, description="TS: months a grant may last")
    moratorium_until: date | None = Field(default=None, description="MOR: no publication before")


class ResearchPurpose(BaseModel):
    """What an applicant will do with the data, in the terms ``match`` compares with a study's DataUse."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str = Field(min_length=3, max_length=200)
    description: str = Field(default="", max_length=5000)
    use: str = Field(
        default=HMB,
        description="the DUO permission the research falls under: GRU (any research), HMB (health, medical "
        "or biomedical), DS (research on the diseases given) or POA (population origins or ancestry)",
    )
    diseases: tuple[str, ...] = Field(default=(), description="MONDO terms, for DS research")
    methods_development: bool = False
    commercial: bool = False
    for_profit_organisation: bool = False
    genetic_study: bool = False
    clinical_care: bool = False
    region: str = ""
    institution: str = ""
    project: str = ""
    research_type: str = ""
    ethics_approval: str = Field(default="", description="IRB/ERB approval reference, where IRB applies")
    accepts: tuple[str, ...] = Field(
        default=(), description="obligations the applicant agrees to: PUB, COL, RTN, MOR, TS"
    )


class Decision(StrEnum):
    ADMITTED = "admitted"  # the purpose fits the consent (with the listed conditions)
    REVIEW = "review"  # fits as far as a machine can tell; a person must check the rest
    REFUSED = "refused"  # the consent does not allow this purpose


@dataclass(frozen=True)
class Match:
    decision: Decision
    reasons: tuple[str, ...]  # why refused, or what needs review
    conditions: tuple[str, ...]  # what the applicant has agreed to, to be written into the grant


DiseaseIsA = Callable[[str, str], bool]


def same_disease(disease: str, ancestor: str) -> bool:
    """The disease hierarchy when no disease ontology is at hand: a disease is only itself."""
    return disease == ancestor


def parse_data_use(vocabulary: Vocabulary, use: DataUse) -> DataUse:
    """``use`` with every term normalised to its id, or InvalidInputError naming what is wrong."""
    permission = vocabulary.term(use.permission, TermKind.PERMISSION).id
    modifiers = tuple(sorted({vocabulary.term(m, TermKind.MODIFIER).id for m in use.modifiers}))
    diseases = _diseases(use.diseases, "consent")
    if permission == DS and not diseases:
        raise InvalidInputError(
            "DS (disease-specific research) needs its diseases, e.g. --disease MONDO:0004992"
        )
    if permission != DS and diseases:
        raise InvalidInputError(
            f"diseases go with DS only; the permission here is {vocabulary.shorthand(permission)}"
        )
    needs = {TS: use.months is not None, MOR: use.moratorium_until is not None}
    for modifier, given in needs.items():
        if (modifier in modifiers) != given:
            name = vocabulary.shorthand(modifier)
            what = "--months" if modifier == TS else "--moratorium-until"
            raise InvalidInputError(f"{name} and {what} go together: give both or neither")
    parameters = {GS: use.regions, IS: use.institutions, PS: use.projects, RS: use.research_types}
    for modifier, values in parameters.items():
        if values and modifier not in modifiers:
            raise InvalidInputError(
                f"{', '.join(values)}: only meaningful with the modifier {vocabulary.shorthand(modifier)}"
            )
    return use.model_copy(update={"permission": permission, "modifiers": modifiers, "diseases": diseases})


def parse_purpose(vocabulary: Vocabulary, purpose: ResearchPurpose) -> ResearchPurpose:
    use = vocabulary.term(purpose.use, TermKind.PERMISSION).id
    if use == NRES:
        raise InvalidInputError("use: NRES describes data, not research; say GRU, HMB, DS or POA")
    diseases = _diseases(purpose.diseases, "purpose")
    if use == DS and not diseases:
        raise InvalidInputError("use DS (disease-specific research): name the diseases, e.g. MONDO:0004992")
    accepts = tuple(sorted({vocabulary.term(term, TermKind.MODIFIER).id for term in purpose.accepts}))
    return purpose.model_copy(update={"use": use, "diseases": diseases, "accepts": accepts})


def match(
    vocabulary: Vocabulary,
    consent: DataUse,
    purpose: ResearchPurpose,
    disease_is_a: DiseaseIsA = same_disease,
) -> Match:
    """Whether ``consent`` (a study's, already parsed) admits ``purpose`` (already parsed), and on which
    conditions. Every refusal names the term that refuses."""
    refused: list[str] = []
    review: list[str] = []
    conditions: list[str] = []
    name = vocabulary.shorthand
    disease_ok = _disease_matches(consent, purpose, disease_is_a)

    refused += _permission_refusals(vocabulary, consent, purpose, disease_ok)
    modifiers = set(consent.modifiers)
    if NPOA in modifiers and purpose.use == POA:
        refused.append("NPOA: population origins or ancestry research is prohibited")
    if NMDS in modifiers and purpose.methods_development and not (consent.permission == DS and disease_ok):
        refused.append("NMDS: methods development is allowed only within the consented disease")
    if GSO in modifiers and not purpose.genetic_study:
        refused.append("GSO: only genetic studies may use these data")
    if modifiers & {NPU, NPUNCU} and purpose.for_profit_organisation:
        refused.append(f"{name(NPU if NPU in modifiers else NPUNCU)}: not-for-profit organisations only")
    if modifiers & {NCU, NPUNCU} and purpose.commercial:
        refused.append(f"{name(NCU if NCU in modifiers else NPUNCU)}: non-commercial use only")
    if purpose.clinical_care and CC not in modifiers:
        refused.append("clinical care use needs CC (DUO:0000043), which this consent does not give")
    if IRB in modifiers:
        if purpose.ethics_approval.strip():
            conditions.append(f"IRB: ethics approval {purpose.ethics_approval.strip()}")
        else:
            refused.append("IRB: give your ethics approval (IRB/ERB) reference")
    for modifier, allowed, given, what in (
        (GS, consent.regions, purpose.region, "region"),
        (IS, consent.institutions, purpose.institution, "institution"),
        (PS, consent.projects, purpose.project, "project"),
        (RS, consent.research_types, purpose.research_type, "research type"),
    ):
        if modifier not in modifiers:
            continue
        if not allowed:
            review.append(f"{name(modifier)}: the study names no {what}; a steward must check {given!r}")
        elif given.strip().lower() not in {value.lower() for value in allowed}:
            refused.append(
                f"{name(modifier)}: the {what} must be one of {', '.join(allowed)}; given {given!r}"
            )
    if US in modifiers:
        conditions.append("US: use by the approved applicant only")
    for obligation in OBLIGATIONS:
        if obligation not in modifiers:
            continue
        if obligation not in purpose.accepts:
            refused.append(f"{name(obligation)}: accept this condition ({_obligation(consent, obligation)})")
        else:
            conditions.append(f"{name(obligation)}: {_obligation(consent, obligation)}")
    if refused:
        return Match(Decision.REFUSED, tuple(refused), ())
    if review:
        return Match(Decision.REVIEW, tuple(review), tuple(conditions))
    return Match(Decision.ADMITTED, (), tuple(conditions))


def _permission_refusals(
    vocabulary: Vocabulary, consent: DataUse, purpose: ResearchPurpose, disease_ok: bool
) -> list[str]:
    """DUO's permission hierarchy: a consent admits research of its own kind and of the kinds below it."""
    name = vocabulary.shorthand
    if consent.permission in (NRES, GRU):
        return []
    if consent.permission == DS:
        if purpose.use != DS:
            return [
                f"DS: only research on {', '.join(consent.diseases)}; {name(purpose.use)} research is wider"
            ]
        if not disease_ok:
            return [
                f"DS: only research on {', '.join(consent.diseases)} (or a kind of it); "
                f"given {', '.join(purpose.diseases)}"
            ]
        return []
    if vocabulary.is_a(purpose.use, consent.permission):
        return []
    if consent.permission == HMB and purpose.use == POA:
        return ["HMB: does not include the study of population origins or ancestry"]
    return [f"{name(consent.permission)}: does not admit {name(purpose.use)} research"]


def _disease_matches(consent: DataUse, purpose: ResearchPurpose, disease_is_a: DiseaseIsA) -> bool:
    """Every disease the purpose names is one the consent names, or a kind of one."""
    if not purpose.diseases or not consent.diseases:
        return False
    return all(any(disease_is_a(d, allowed) for allowed in consent.diseases) for d in purpose.diseases)


def _obligation(consent: DataUse, term: str) -> str:
    return {
        PUB: "make the results available to the scientific community",
        COL: "collaborate with the study's investigators",
        RTN: "return derived or enriched data to this repository",
        MOR: f"do not publish before {consent.moratorium_until}",
        TS: f"access ends after {consent.months} months",
    }[term]


def _diseases(values: tuple[str, ...], where: str) -> tuple[str, ...]:
    cleaned = tuple(dict.fromkeys(value.strip().upper() for value in values if value.strip()))
    for value in cleaned:
        if not _DISEASE.match(value):
            raise InvalidInputError(
                f"{where} disease {value!r}: give a MONDO term such as MONDO:0004992 (cancer)"
            )
    return cleaned
