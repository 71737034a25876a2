"""The PHI scanner on generated, labelled text: what it finds, what it misses (recall) and what it flags
wrongly (precision), overall and by kind; and free text as the scanner meets it in study metadata."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from fairimage.model.errors import ConflictError
from fairimage.model.governance.policy import operator
from fairimage.model.privacy.phi import scan
from fairimage.services.curation import annotations, study_metadata
from fairimage.services.governance import versions
from fairimage.services.ingest.intake import ingest_paths
from fairimage.services.privacy import phi
from fairimage.services.repository import init_repository
from fairimage.settings import load_settings
from tests import samples
from tests.conftest import run_cli

FIRST = ["John", "Maria", "Ahmed", "Li", "Sofia", "Olusegun", "Anna-Lena", "Pierre", "Ingrid", "Kenji"]
LAST = ["Smith", "Garcia", "Okafor", "Nguyen", "Müller", "O'Brien", "Kowalski", "Haddad", "Tanaka", "Silva"]
STREETS = ["Baker Street", "Elm Road", "Rue Lepic", "Hauptstrasse", "Maple Avenue", "Church Lane"]
SCIENCE = [
    "HeLa cells imaged at 37 C for 48 h with a 63x/1.4 NA oil objective.",
    "Confocal z-stacks, 0.5 um steps, 3 channels (DAPI, GFP, mCherry).",
    "Plate 12, well B03; fixed in 4% PFA for 15 min and permeabilised.",
    "Zeiss LSM 880 with Airyscan, pinhole 1 AU, pixel size 0.043 um.",
    "Mouse liver sections stained with H&E, scanned at 40x (0.25 um/px).",
    "Segmented with Cellpose 2.0 and tracked with TrackMate 7.11.",
    "Exposure 100 ms, binning 2x2, 16-bit sCMOS camera, 2048 x 2048 pixels.",
    "Organoids at day 7 and day 14; n = 3 biological replicates.",
    "Light-sheet acquisition at 488 nm and 561 nm, 5 um sheet thickness.",
    "Patient Positioning: head first supine; 120 kVp, 250 mAs.",
]


@dataclass
class Example:
    text: str
    spans: list[tuple[int, int, str]]  # labelled PHI: start, end, kind


def _compose(rng: random.Random) -> Example:
    """One sentence: science text, and (mostly) a few pieces of PHI in templates people write."""
    parts: list[tuple[str, str | None]] = [(rng.choice(SCIENCE), None)]
    name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    day, month, year = rng.randint(1, 28), rng.randint(1, 12), rng.randint(1935, 2005)
    pieces = [
        (f"Patient: {name}.", "name"),
        (f"Referred by Dr. {rng.choice(LAST)}.", "name"),
        (f"Images of {name} taken after surgery.", "name"),  # a name without a cue: hard to catch
        (f"DOB {day:02d}/{month:02d}/{year}.", "date_of_birth"),
        (f"born on {day} {['March', 'July', 'Oct'][month % 3]} {year},", "date_of_birth"),
        (f"MRN: {rng.randint(1000000, 99999999)}", "record_number"),
        (f"Hospital no. A{rng.randint(100000, 999999)}", "record_number"),
        (f"Call +44 20 {rng.randint(1000, 9999)} {rng.randint(1000, 9999)} for results.", "phone"),
        (f"tel (617) {rng.randint(200, 999)}-{rng.randint(1000, 9999)}", "phone"),
        (f"Contact {rng.choice(FIRST).lower()}.{rng.choice(LAST).lower()}@example.org", "email"),
        (f"lives at {rng.randint(1, 250)} {rng.choice(STREETS)}", "address"),
        (f"Scan of {year}-{month:02d}-{day:02d}.", "date"),
        (f"{rng.choice(LAST).upper()}^{rng.choice(FIRST).upper()}", "name"),
    ]
    for piece in rng.sample(pieces, rng.choice([0, 1, 1, 2, 3])):
        parts.append(piece)
    rng.shuffle(parts)
    text, spans = "", []
    for piece, kind in parts:
        if text:
            text += " "
        if kind is not None:
            core = _core(piece, kind)
            offset = piece.index(core)
            spans.append((len(text) + offset, len(text) + offset + len(core), kind))
        text += piece
    return Example(text, spans)


def _core(piece: str, kind: str) -> str:
    """The identifying part of a labelled piece (its words around it are context)."""
    for prefix in ("Patient: ", "Referred by ", "Images of ", "Contact ", "lives at ", "Scan of ", "Call "):
        if piece.startswith(prefix):
            piece = piece[len(prefix) :]
    for suffix in (" taken after surgery.", " for results.", ".", ","):
        piece = piece.removesuffix(suffix)
    return piece


def evaluate(examples: list[Example]) -> dict[str, tuple[float, float]]:
    """Precision and recall, overall and per labelled kind; a labelled span counts as found when a finding
    overlaps it, a finding as right when it overlaps a labelled span."""
    hits: dict[str, list[bool]] = {}
    right, findings = 0, 0
    for example in examples:
        found = scan(example.text)
        findings += len(found)
        right += sum(any(f.start < e and s < f.end for s, e, _ in example.spans) for f in found)
        for start, end, kind in example.spans:
            hits.setdefault(kind, []).append(any(f.start < end and start < f.end for f in found))
    every = [hit for kind_hits in hits.values() for hit in kind_hits]
    scores = {kind: (float("nan"), sum(h) / len(h)) for kind, h in hits.items()}
    scores["all"] = (right / max(findings, 1), sum(every) / max(len(every), 1))
    return scores


def test_precision_and_recall_on_generated_labelled_text() -> None:
    rng = random.Random(2026)
    examples = [_compose(rng) for _ in range(2000)]
    scores = evaluate(examples)
    precision, recall = scores["all"]
    print(
        "PHI scanner on 2,000 generated sentences:",
        {k: tuple(round(v, 3) for v in s) for k, s in scores.items()},
    )
    assert precision >= 0.97 and recall >= 0.9, scores
    for kind in ("date_of_birth", "record_number", "phone", "email", "address", "date"):
        assert scores[kind][1] >= 0.97, (kind, scores[kind])
    # Names are found after a cue (a title, "Patient:", "referred by") or in DICOM's SMITH^JOHN form; a bare
    # name in a sentence ("images of John Smith") is not, which is a quarter of the names generated here.
    assert scores["name"][1] >= 0.7, scores["name"]


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("Mr. John Smith, DOB 03/04/1961, MRN 12345678", ["name", "date_of_birth", "record_number"]),
        ("SMITH^JOHN^^^", ["name"]),
        ("Write to ada.l@example.org or call +1 617 555 0199", ["email", "phone"]),
        ("Sample from 221B Baker Street, London NW1 6XE", ["address", "postcode"]),
        ("HeLa cells, 63x/1.4 NA, 37 C, 0.5 um steps, plate 12 well B03", []),
        ("Patient Positioning: head first supine", []),
    ],
)
def test_what_it_finds_in_typical_text(text: str, kinds: list[str]) -> None:
    assert [finding.kind for finding in scan(text)] == kinds


def test_a_study_with_findings_waits_for_a_stewards_acknowledgement(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "repo")
    repository = init_repository(settings)
    try:
        picture = samples.png(tmp_path / "cells.png", np.zeros((8, 8), np.uint8))
        ingest_paths(repository, [picture], study="Biopsies")
        document = {
            "study": {
                "title": "Biopsies",
                "description": "Sections from Mr. John Smith, DOB 03/04/1961, stained with H&E.",
                "authors": [{"name": "Ada Lovelace"}],  # contributors are named on purpose: not a finding
            }
        }
        report = study_metadata.set_metadata(repository, operator("curator"), "Biopsies", document)
        assert [str(p) for p in report.phi] == [
            "study.description: may identify a person (name 'Mr. John Smith'); remove it, or a steward "
            "acknowledges it before publication",
            "study.description: may identify a person (date_of_birth 'DOB 03/04/1961'); remove it, or a "
            "steward acknowledges it before publication",
        ]
        with pytest.raises(ConflictError, match="the PHI scanner found 2 possible personal identifier"):
            versions.publish(repository, operator("steward"), "Biopsies")
        shown = run_cli("study", "phi", "Biopsies", "--repo", settings.repo, "--json")
        assert (
            len(json.loads(shown.stdout)["findings"]) == 2
            and json.loads(shown.stdout)["acknowledged"] is None
        )
        refused = run_cli("study", "acknowledge-phi", "Biopsies", "--repo", settings.repo)
        assert refused.returncode != 0 and "--note" in refused.stderr
        done = run_cli(
            "study", "acknowledge-phi", "Biopsies", "--note", "consented case report", "--repo", settings.repo
        )
        assert done.returncode == 0, done.stderr
        assert versions.publish(repository, operator("steward"), "Biopsies").published_at is not None
        annotations.annotate(
            repository,
            operator("curator"),
            "Biopsies",
            annotations.Change(pairs=(("contact", "ada@example.org"),)),
        )
        assert phi.study_phi(repository, operator("steward"), "Biopsies").blocks_publication  # a new finding
    finally:
        repository.close()


def test_file_names_that_may_identify_a_person_are_reported_at_ingest(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "repo")
    init_repository(settings).close()
    picture = samples.png(tmp_path / "Mr_John_Smith_DOB_1961-03-04.png", np.zeros((8, 8), np.uint8))
    result = run_cli("ingest", picture, "--study", "Scans", "--repo", settings.repo)
    assert result.returncode == 0, result.stderr
    assert "Mr_John_Smith_DOB_1961-03-04.png: its name may identify a person" in result.stderr
    from fairimage.services.recovery import open_repository

    opened = open_repository(settings)
    try:
        found = phi.study_phi(opened, operator("steward"), "Scans")
        assert found.blocks_publication and {
            f["finding"].split("(")[1].split()[0] for f in found.findings
        } >= {
            "name",
            "date_of_birth",
        }
    finally:
        opened.close()
