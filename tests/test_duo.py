"""DUO consent matching, against a table of cases written from the DUO documentation (term definitions of
the 2021-02-23 release) and the DUOS matching rules (DataBiosphere/consent-ontology, docs/Algorithms.md)."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest

from fairimage.model.errors import InvalidInputError
from fairimage.model.governance.duo import (
    DataUse,
    Decision,
    ResearchPurpose,
    match,
    normalise_id,
    parse_data_use,
    parse_purpose,
)
from fairimage.ontology import duo

CANCER = "MONDO:0004992"
BREAST_CANCER = "MONDO:0007254"
DIABETES = "MONDO:0005015"


def cancer_hierarchy(disease: str, ancestor: str) -> bool:
    """A two-term disease hierarchy for the DS cases: breast cancer is a kind of cancer."""
    return disease == ancestor or (disease, ancestor) == (BREAST_CANCER, CANCER)


def consent(permission: str, *modifiers: str, **parameters: Any) -> DataUse:
    return parse_data_use(duo(), DataUse(permission=permission, modifiers=modifiers, **parameters))


def purpose(use: str = "HMB", **fields: Any) -> ResearchPurpose:
    return parse_purpose(duo(), ResearchPurpose(title="a study", use=use, **fields))


A, R, V = Decision.ADMITTED, Decision.REFUSED, Decision.REVIEW
CASES = [
    # (consent, purpose, decision, words in the reason) -- the permission hierarchy
    ("NRES: anything goes", consent("NRES"), purpose("POA"), A, ""),
    ("GRU admits GRU", consent("GRU"), purpose("GRU"), A, ""),
    ("GRU admits HMB", consent("GRU"), purpose("HMB"), A, ""),
    ("GRU admits DS", consent("GRU"), purpose("DS", diseases=(CANCER,)), A, ""),
    ("GRU admits POA", consent("GRU"), purpose("POA"), A, ""),
    ("HMB admits HMB", consent("HMB"), purpose("HMB"), A, ""),
    ("HMB admits DS", consent("HMB"), purpose("DS", diseases=(DIABETES,)), A, ""),
    ("HMB refuses GRU", consent("HMB"), purpose("GRU"), R, "HMB: does not admit GRU"),
    ("HMB refuses POA", consent("HMB"), purpose("POA"), R, "population origins or ancestry"),
    (
        "DS:cancer refuses GRU",
        consent("DS", diseases=(CANCER,)),
        purpose("GRU"),
        R,
        "DS: only research on MONDO:0004992",
    ),
    ("DS:cancer refuses HMB", consent("DS", diseases=(CANCER,)), purpose("HMB"), R, "is wider"),
    ("DS:cancer admits cancer", consent("DS", diseases=(CANCER,)), purpose("DS", diseases=(CANCER,)), A, ""),
    (
        "DS:cancer admits a kind of cancer",
        consent("DS", diseases=(CANCER,)),
        purpose("DS", diseases=(BREAST_CANCER,)),
        A,
        "",
    ),
    (
        "DS:breast cancer refuses cancer in general",
        consent("DS", diseases=(BREAST_CANCER,)),
        purpose("DS", diseases=(CANCER,)),
        R,
        "given MONDO:0004992",
    ),
    (
        "DS:cancer refuses diabetes",
        consent("DS", diseases=(CANCER,)),
        purpose("DS", diseases=(DIABETES,)),
        R,
        "DS: only research on",
    ),
    ("POA admits POA", consent("POA"), purpose("POA"), A, ""),
    ("POA refuses HMB", consent("POA"), purpose("HMB"), R, "POA: does not admit HMB"),
    # modifiers about who and what
    ("NPOA refuses ancestry research", consent("GRU", "NPOA"), purpose("POA"), R, "NPOA"),
    ("NPU admits a not-for-profit", consent("HMB", "NPU"), purpose(), A, ""),
    ("NPU refuses a company", consent("HMB", "NPU"), purpose(for_profit_organisation=True), R, "NPU"),
    (
        "NCU admits non-commercial use by a company",
        consent("HMB", "NCU"),
        purpose(for_profit_organisation=True),
        A,
        "",
    ),
    ("NCU refuses commercial use", consent("HMB", "NCU"), purpose(commercial=True), R, "NCU: non-commercial"),
    ("NPUNCU refuses either", consent("HMB", "NPUNCU"), purpose(commercial=True), R, "NPUNCU"),
    (
        "NMDS refuses methods work on HMB",
        consent("HMB", "NMDS"),
        purpose(methods_development=True),
        R,
        "NMDS",
    ),
    (
        "NMDS admits methods work within DS",
        consent("DS", "NMDS", diseases=(CANCER,)),
        purpose("DS", diseases=(CANCER,), methods_development=True),
        A,
        "",
    ),
    ("no NMDS: methods work is fine", consent("HMB"), purpose(methods_development=True), A, ""),
    ("GSO refuses phenotype-only work", consent("GRU", "GSO"), purpose(), R, "GSO"),
    ("GSO admits genetic studies", consent("GRU", "GSO"), purpose(genetic_study=True), A, ""),
    ("clinical care needs CC", consent("HMB"), purpose(clinical_care=True), R, "CC"),
    ("CC admits clinical care", consent("HMB", "CC"), purpose(clinical_care=True), A, ""),
    # modifiers that ask for evidence or agreement
    ("IRB without a reference", consent("HMB", "IRB"), purpose(), R, "ethics approval"),
    ("IRB with a reference", consent("HMB", "IRB"), purpose(ethics_approval="ERB-2026-114"), A, ""),
    ("PUB not accepted", consent("HMB", "PUB"), purpose(), R, "PUB: accept"),
    ("PUB accepted", consent("HMB", "PUB"), purpose(accepts=("PUB",)), A, ""),
    ("COL accepted by id", consent("HMB", "COL"), purpose(accepts=("DUO:0000020",)), A, ""),
    ("RTN not accepted", consent("HMB", "RTN"), purpose(accepts=("PUB",)), R, "RTN"),
    (
        "MOR accepted",
        consent("HMB", "MOR", moratorium_until=date(2027, 6, 30)),
        purpose(accepts=("MOR",)),
        A,
        "",
    ),
    ("TS not accepted", consent("HMB", "TS", months=12), purpose(), R, "access ends after 12 months"),
    # modifiers that name where, who or what
    ("GS inside the region", consent("HMB", "GS", regions=("EU",)), purpose(region="eu"), A, ""),
    ("GS outside the region", consent("HMB", "GS", regions=("EU",)), purpose(region="US"), R, "one of EU"),
    ("GS without regions needs a person", consent("HMB", "GS"), purpose(region="EU"), V, "names no region"),
    ("IS other institution", consent("HMB", "IS", institutions=("EMBL",)), purpose(institution="X"), R, "IS"),
    ("PS approved project", consent("HMB", "PS", projects=("P-7",)), purpose(project="P-7"), A, ""),
    (
        "RS wrong type",
        consent("HMB", "RS", research_types=("imaging",)),
        purpose(research_type="omics"),
        R,
        "RS",
    ),
    ("US is a condition", consent("HMB", "US"), purpose(), A, ""),
]


@pytest.mark.parametrize(
    ("consent_terms", "research", "decision", "words"),
    [case[1:] for case in CASES],
    ids=[c[0] for c in CASES],
)
def test_matching_follows_duo(
    consent_terms: DataUse, research: ResearchPurpose, decision: Decision, words: str
) -> None:
    result = match(duo(), consent_terms, research, cancer_hierarchy)
    assert result.decision is decision, result
    if words:
        assert any(words in reason for reason in result.reasons), result.reasons


def test_several_refusals_are_all_named() -> None:
    result = match(duo(), consent("HMB", "NPU", "IRB", "PUB"), purpose("POA", for_profit_organisation=True))
    assert result.decision is Decision.REFUSED
    assert [reason.split(":")[0] for reason in result.reasons] == ["HMB", "NPU", "IRB", "PUB"]


def test_admitted_requests_carry_their_conditions() -> None:
    terms = consent("HMB", "PUB", "TS", "US", "IRB", months=6)
    result = match(duo(), terms, purpose(accepts=("PUB", "TS"), ethics_approval="IRB-1"))
    assert result.decision is Decision.ADMITTED
    assert result.conditions == (
        "IRB: ethics approval IRB-1",
        "US: use by the approved applicant only",
        "PUB: make the results available to the scientific community",
        "TS: access ends after 6 months",
    )


@pytest.mark.parametrize(
    "spelling",
    [
        "DUO:0000042",
        "DUO_0000042",
        "obo:DUO_0000042",
        "http://purl.obolibrary.org/obo/DUO_0000042",
        "DUO_00000042",
        "duo:0000042",
        " DUO:0000042 ",
    ],
)
def test_term_ids_are_normalised(spelling: str) -> None:
    assert normalise_id(spelling) == "DUO:0000042"
    assert duo().term(spelling).shorthand == "GRU"


@pytest.mark.parametrize("spelling", ["DUO:42", "DUO:10000042", "MONDO:0000042", "GRU!"])
def test_what_is_not_a_duo_id(spelling: str) -> None:
    assert normalise_id(spelling) is None


def test_the_bundled_release() -> None:
    vocabulary = duo()
    assert vocabulary.version == "2021-02-23"
    assert vocabulary.version_iri == "http://purl.obolibrary.org/obo/duo/releases/2021-02-23/duo.owl"
    assert "CC BY 4.0" in vocabulary.license
    shorthands = {term.shorthand for term in vocabulary.terms}
    assert {
        "NRES",
        "GRU",
        "HMB",
        "DS",
        "POA",
        "NPU",
        "NCU",
        "NPOA",
        "IRB",
        "PUB",
        "COL",
        "GS",
        "MOR",
        "TS",
        "US",
        "PS",
        "IS",
        "RTN",
        "NMDS",
        "GSO",
        "RS",
        "CC",
    } <= shorthands
    assert vocabulary.term("NPU").id == "DUO:0000045"
    assert vocabulary.term("hmb").label == "health or medical or biomedical research"
    assert vocabulary.is_a("DUO:0000007", "DUO:0000042")  # DS is a kind of GRU, through HMB


@pytest.mark.parametrize(
    ("terms", "words"),
    [
        (DataUse(permission="NPU"), "NPU is a data use modifier, not a permission"),
        (DataUse(permission="HMB", modifiers=("GRU",)), "GRU is a data use permission, not a modifier"),
        (DataUse(permission="XYZ"), "'XYZ' is not a DUO permission"),
        (DataUse(permission="DS"), "DS (disease-specific research) needs its diseases"),
        (DataUse(permission="HMB", diseases=(CANCER,)), "diseases go with DS only"),
        (DataUse(permission="DS", diseases=("cancer",)), "give a MONDO term"),
        (DataUse(permission="HMB", modifiers=("TS",)), "TS and --months go together"),
        (DataUse(permission="HMB", regions=("EU",)), "only meaningful with the modifier GS"),
    ],
)
def test_bad_consent_terms_say_what_to_fix(terms: DataUse, words: str) -> None:
    with pytest.raises(InvalidInputError, match=re.escape(words)):
        parse_data_use(duo(), terms)
