"""REMBI curation as submitters meet it: the template, one-line problems with fixes, ontology terms resolved,
spreadsheets round-tripped, metadata saved as a new version, refused before ingest when wrong, over the CLI
and HTTP; and the FAIR score before and after curation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml

from fairimage import ontology
from fairimage.model.curation.checks import StudyFacts, check, fair_score, normalise_license, normalise_orcid
from fairimage.model.governance.policy import Role, Scope, operator
from fairimage.services.curation import study_metadata
from fairimage.services.curation.spreadsheets import read_sheets, write_sheets
from fairimage.services.governance import accounts, audit, policies, versions
from fairimage.services.ingest.intake import ingest_paths
from fairimage.services.repository import init_repository
from fairimage.settings import load_settings
from tests import samples
from tests.conftest import LiveServer, run_cli

ADMIN = operator("test")
VOCABULARIES = {name: ontology.ontology(name) for name in ontology.NAMES}


def hela() -> dict[str, Any]:
    """A complete study file, as a microscopist would write it."""
    return {
        "study": {
            "title": "HeLa cells in mitosis",
            "description": "Live HeLa cells imaged through mitosis by spinning-disk confocal microscopy.",
            "license": "CC BY 4.0",
            "keywords": ["mitosis", "HeLa"],
            "authors": [
                {
                    "name": "Ada Lovelace",
                    "orcid": "https://orcid.org/0000-0002-1825-0097",
                    "affiliation": "Lab",
                }
            ],
        },
        "study_components": [
            {
                "name": "time lapse",
                "description": "Dividing cells, DNA and tubulin",
                "imaging_methods": ["spinning disk confocal microscopy"],
                "biosample": "hela",
                "specimen": "live",
                "acquisition": "sd1",
            }
        ],
        "biosamples": [{"id": "hela", "organism": "NCBITaxon:9606", "biological_entity": "HeLa cell"}],
        "specimens": [
            {
                "id": "live",
                "preparation_method": "grown on glass, imaged live at 37 C",
                "channels": [{"name": "DNA", "content": "FBbi:00000056", "biological_entity": "chromosomes"}],
            }
        ],
        "image_acquisitions": [
            {"id": "sd1", "instrument": "Yokogawa CSU-W1 on a Nikon Ti2", "parameters": "100 ms"}
        ],
    }


def lines(data: Any) -> list[str]:
    return [str(problem) for problem in check(data, VOCABULARIES).errors]


def test_a_complete_study_file_has_no_errors_and_its_terms_are_resolved() -> None:
    report = check(hela(), VOCABULARIES)
    assert report.complete, [str(p) for p in report.problems]
    rembi = report.rembi
    assert rembi is not None
    method = rembi.study_components[0].imaging_methods[0]
    assert (method.id, method.label) == ("FBbi:00000253", "spinning disk confocal microscopy")
    assert rembi.biosamples[0].organism is not None and rembi.biosamples[0].organism.label == "Homo sapiens"
    assert rembi.study.license == "CC-BY-4.0" and rembi.study.authors[0].orcid == "0000-0002-1825-0097"


def test_every_problem_is_one_line_with_the_field_and_the_fix() -> None:
    data = hela()
    data["biosamples"][0]["organism"] = "mouse"
    data["study_components"][0]["imaging_methods"] = ["FBbi:00000056", "FBbi:99999999", "spinning disk"]
    data["study"]["license"] = "free for all"
    data["study"]["authors"][0]["orcid"] = "0000-0002-1825-0098"
    data["study_components"][0]["specimen"] = "fixed"
    data["specimens"][0]["prep"] = "x"
    assert lines(data) == [
        "specimens[0].prep: is not a REMBI field; known fields here: channels, experimental_status, id, "
        "location_within_biosample, preparation_method, preparation_terms, signal_contrast_mechanism"
    ]
    del data["specimens"][0]["prep"]
    assert lines(data) == [
        "study.license: 'free for all' is not an SPDX licence id; use e.g. CC-BY-4.0 or CC0-1.0",
        "study.authors[0].orcid: '0000-0002-1825-0098' is not a valid ORCID iD (16 digits in four groups, "
        "the last a check digit); copy it from orcid.org",
        "study_components[0].imaging_methods[0]: FBbi:00000056 (4',6-diamidino-2-phenylindole (DAPI)) is not "
        "a kind of imaging method (FBbi:00000222) or resolution-enhancing method (FBbi:00000321)",
        "study_components[0].imaging_methods[1]: 'FBbi:99999999' is not in the bundled FBbi (2020-11-06); "
        "look one up with 'fairimage ontology search fbbi WORDS'",
        "study_components[0].imaging_methods[2]: 'spinning disk' is not an FBbi term; did you mean "
        "FBbi:00000253 (spinning disk confocal microscopy)?",
        "biosamples[0].organism: 'mouse' is not an NCBITaxon term; "
        "did you mean NCBITaxon:10090 (Mus musculus)?",
        "study_components[0].specimen: 'fixed' is not a specimen id; the specimen ids are live",
    ]


def test_topics_and_analysis_operations_are_edam_bioimaging_terms() -> None:
    data = hela()
    data["study"]["topics"] = ["Spinning disk confocal microscopy (SDCM)", "EDAM:topic_3385"]
    data["analysed_data"] = [{"type": "cell tracks", "operations": ["cell tracking", "watershed"]}]
    assert lines(data) == [
        "study.topics[0]: 'Spinning disk confocal microscopy (SDCM)' is not an EDAM-bioimaging term; did you "
        "mean EDAM:topic__Rn8MnorStmqIkNlAVZWBc0 (Confocal fluorescence microscopy)?",
        "analysed_data[0].operations[1]: 'watershed' is not an EDAM-bioimaging term; did you mean "
        "EDAM:operation_Watershed (Watershed segmentation)?",
    ]
    data["study"]["topics"][0] = "Confocal fluorescence microscopy"
    data["analysed_data"][0]["operations"][1] = "EDAM:topic_3385"
    assert lines(data) == [
        "analysed_data[0].operations[1]: EDAM:topic_3385 (Light microscopy) is not a kind of Operation "
        "(EDAM:operation_0004)"
    ]
    data["analysed_data"][0]["operations"][1] = "http://edamontology.org/operation_Watershed"
    report = check(data, VOCABULARIES)
    assert report.complete and report.rembi is not None
    assert [(t.id, t.label) for t in report.rembi.analysed_data[0].operations] == [
        ("EDAM:operation_Cell_tracking", "Cell tracking"),
        ("EDAM:operation_Watershed", "Watershed segmentation"),
    ]
    assert [t.id for t in report.rembi.study.topics] == [
        "EDAM:topic__Rn8MnorStmqIkNlAVZWBc0",
        "EDAM:topic_3385",
    ]


def test_missing_attributes_are_listed_by_level() -> None:
    report = check({"study": {"title": "Only a title"}}, VOCABULARIES)
    assert not report.errors
    missing = [problem.path for problem in report.missing]
    assert missing[:3] == ["study.description", "study.authors", "study.license"]
    assert "biosamples" in missing and "image_acquisitions" in missing
    assert "study.keywords" in [problem.path for problem in report.hints]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("CC BY 4.0", "CC-BY-4.0"),
        ("cc0-1.0", "CC0-1.0"),
        ("https://creativecommons.org/licenses/by-sa/4.0/", "CC-BY-SA-4.0"),
        ("http://creativecommons.org/licenses/by/4.0", "CC-BY-4.0"),
        ("all rights reserved", None),
    ],
)
def test_licences(text: str, expected: str | None) -> None:
    assert normalise_license(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0000-0002-1825-0097", "0000-0002-1825-0097"),
        ("https://orcid.org/0000-0001-5109-3700", "0000-0001-5109-3700"),
        ("0000-0002-1694-233X", "0000-0002-1694-233X"),
        ("0000-0002-1825-0098", None),
        ("0000-0002-1825", None),
    ],
)
def test_orcid_check_digits(text: str, expected: str | None) -> None:
    assert normalise_orcid(text) == expected


def test_the_score_rises_with_curation_and_says_what_is_left() -> None:
    facts = StudyFacts(image_count=2, images_with_physical_sizes=2, images_with_provenance=2)
    before = fair_score(None, facts)
    after = fair_score(check(hela(), VOCABULARIES).rembi, facts)
    assert before.score < 40 < 80 < after.score <= 100
    assert {check.id for check in before.to_raise} >= {"license", "methods", "organisms", "required"}
    assert "license" not in {check.id for check in after.to_raise}
    assert after.by_principle["I"] == (25.0, 25.0)
    assert (
        before.to_raise[0].points - before.to_raise[0].earned
        >= before.to_raise[-1].points - before.to_raise[-1].earned
    )


@pytest.mark.parametrize("target", ["sheets", "study.xlsx"])
def test_spreadsheets_round_trip(tmp_path: Path, target: str) -> None:
    data = hela()
    data["biosamples"][0]["cell_types"] = ["CL:0000127", "neuron"]
    data["biosamples"][0]["organism_parts"] = ["brain"]
    document = check(data, VOCABULARIES).rembi
    assert document is not None
    path = write_sheets(document.dump(), tmp_path / target)
    again = check(read_sheets(path), VOCABULARIES)
    assert again.rembi is not None and again.rembi.dump() == document.dump()


def test_template_validate_set_show_and_export_on_the_command_line(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)
    template = run_cli("template", "rembi", check=True).stdout
    assert "# required: the study's title" in template
    (tmp_path / "study.yaml").write_text(template)
    empty = run_cli("metadata", "validate", tmp_path / "study.yaml")
    assert empty.returncode == 2
    assert (
        "missing: study.title: required but missing: the study's title, as it would be cited" in empty.stderr
    )
    assert empty.stderr.strip().endswith(
        "0 errors, 10 required attributes missing, 9 recommended attributes missing"
    )

    wrong = hela()
    wrong["biosamples"][0]["organism"] = "mouse"
    (tmp_path / "wrong.yaml").write_text(yaml.safe_dump(wrong))
    picture = samples.png(tmp_path / "cells.png", np.full((16, 16), 7, np.uint8))
    refused = run_cli(
        "ingest", picture, "--study", "HeLa", "--metadata", tmp_path / "wrong.yaml", "--repo", repo
    )
    assert refused.returncode == 2
    assert (
        "error: biosamples[0].organism: 'mouse' is not an NCBITaxon term; did you mean NCBITaxon:10090"
        in refused.stderr
    )
    assert (
        json.loads(run_cli("images", "--repo", repo, "--json", check=True).stdout) == []
    )  # nothing ingested

    (tmp_path / "hela.yaml").write_text(yaml.safe_dump(hela()))
    run_cli(
        "ingest", picture, "--study", "HeLa", "--metadata", tmp_path / "hela.yaml", "--repo", repo, check=True
    )
    shown = json.loads(run_cli("metadata", "show", "HeLa", "--repo", repo, "--json", check=True).stdout)
    assert shown["complete"] and shown["rembi"]["biosamples"][0]["organism"]["label"] == "Homo sapiens"
    assert shown["image_data"]["extracted"] and shown["image_data"]["images"][0]["dimensions"] == {
        "y": 16,
        "x": 16,
    }
    score = json.loads(run_cli("metadata", "score", "HeLa", "--repo", repo, "--json", check=True).stdout)
    assert score["score"] == shown["fair_score"]["score"] >= 80
    notes = [
        v["note"]
        for v in json.loads(run_cli("versions", "HeLa", "--repo", repo, "--json", check=True).stdout)
    ]
    assert notes[-1] == "REMBI metadata changed"

    run_cli("metadata", "export", "HeLa", "--to", tmp_path / "out.json", "--repo", repo, check=True)
    exported = json.loads((tmp_path / "out.json").read_text())
    assert exported["study"]["license"] == "CC-BY-4.0"
    run_cli("metadata", "export", "HeLa", "--to", tmp_path / "sheets", "--repo", repo, check=True)
    assert run_cli("metadata", "validate", tmp_path / "sheets").returncode == 0

    search = run_cli("ontology", "search", "ncbitaxon", "zebrafish", check=True).stdout
    assert search.splitlines()[0] == "NCBITaxon:7955  Danio rerio  (zebrafish)"
    broken = tmp_path / "broken.yaml"
    broken.write_text("study:\n  title: [unclosed\n")
    bad = run_cli("metadata", "validate", broken)
    assert bad.returncode == 2 and bad.stderr.startswith(f"error: {broken}: line 3: not valid YAML")


def test_metadata_over_http(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "repo")
    repository = init_repository(settings)
    ingest_paths(repository, [samples.png(tmp_path / "a.png", np.ones((8, 8), np.uint8))], study="Tumours")
    policies.set_policy(repository, ADMIN, "Tumours", "restricted")
    accounts.add_user(repository, ADMIN, "stu", Role.STEWARD)
    accounts.add_user(repository, ADMIN, "ada", Role.VIEWER)
    steward = {
        "Authorization": f"Bearer {accounts.create_token(repository, ADMIN, 'stu', Scope.WRITE).secret}"
    }
    viewer = {
        "Authorization": f"Bearer {accounts.create_token(repository, ADMIN, 'ada', Scope.WRITE).secret}"
    }
    with LiveServer(settings) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        wrong = hela()
        wrong["biosamples"][0]["organism"] = "mouse"
        refused = client.put("/api/studies/Tumours/metadata", headers=steward, json=wrong)
        assert refused.status_code == 422
        assert refused.json()["problems"][0]["line"].startswith("biosamples[0].organism: 'mouse' is not")
        assert client.put("/api/studies/Tumours/metadata", headers=viewer, json=hela()).status_code == 403
        saved = client.put("/api/studies/Tumours/metadata", headers=steward, json=hela())
        assert saved.status_code == 200 and saved.json()["complete"]
        # A restricted study's record, metadata included, is public; its images' data are not.
        public = client.get("/api/studies/Tumours/metadata").json()
        assert public["rembi"]["study"]["title"] == "HeLa cells in mitosis"
        assert public["image_data"]["images"] == []
        assert (
            len(client.get("/api/studies/Tumours/metadata", headers=steward).json()["image_data"]["images"])
            == 1
        )
        checked = client.post("/api/metadata/validate", json={"study": {"license": "nope"}}).json()
        assert not checked["complete"] and checked["problems"][0]["severity"] == "error"
        score = client.get("/api/studies/Tumours/fair-score").json()
        assert "consent" in {item["id"] for item in score["to_raise"]}  # restricted without DUO terms
        page = client.get("/studies/Tumours").text
        assert f"FAIR score {score['score']}/100" in page and "Homo sapiens" in page
    (edit,) = audit.entries(repository, action="study.metadata")  # the refused attempts left no entry
    assert edit.actor == "stu" and edit.details["complete"] is True
    assert versions.get_version(repository, ADMIN, "Tumours", None).note == "REMBI metadata changed"
    assert study_metadata.get_metadata(repository, ADMIN, "Tumours").report.complete
    repository.close()


def test_what_the_files_say_of_their_acquisition_is_extracted(tmp_path: Path) -> None:
    """An OME-TIFF's instrument, objective, date and wavelengths, and a plain TIFF's tags, are read at
    ingest and shown as extracted image data, never asked for."""
    import tifffile

    data = samples.ramp((2, 16, 20))
    path = samples.ome_tiff(tmp_path / "scope.ome.tif", data, axes="CYX")
    with tifffile.TiffFile(path) as tif:
        xml = tif.ome_metadata
    ns = "http://www.openmicroscopy.org/Schemas/OME/2016-06"
    instrument = (
        '<Instrument ID="Instrument:0"><Microscope Manufacturer="Nikon" Model="Ti2" Type="Inverted"/>'
        '<Detector ID="Detector:0" Manufacturer="Hamamatsu" Model="ORCA-Fusion" Type="CMOS"/>'
        '<Objective ID="Objective:0" Manufacturer="Nikon" Model="Plan Apo" NominalMagnification="60" '
        'LensNA="1.4" Immersion="Oil"/></Instrument>'
    )
    xml = xml.replace(f'<OME xmlns="{ns}"', f'<OME xmlns="{ns}"', 1)
    xml = xml.replace("<Image ", instrument + "<Image ", 1)
    xml = xml.replace("<Pixels ", "<AcquisitionDate>2026-03-04T10:11:12</AcquisitionDate><Pixels ", 1)
    xml = xml.replace("<Channel ", '<Channel ExcitationWavelength="405" EmissionWavelength="460" ', 1)
    tifffile.imwrite(path, data, description=xml, metadata=None, photometric="minisblack")
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, data[0], software="MetaMorph 7.10", datetime="2026:01:02 03:04:05")
    settings = load_settings(tmp_path / "repo")
    repository = init_repository(settings)
    ingest_paths(repository, [path, plain], study="Scope")
    images = {image.file: image for image in study_metadata.get_metadata(repository, ADMIN, "Scope").images}
    repository.close()
    # A study file pre-filled with what the files said, marked as extracted.
    prefilled = run_cli("template", "rembi", "--from", "Scope", "--repo", settings.repo, check=True).stdout
    assert "#   image_acquisitions[0].objective: extracted from scope.ome.tif" in prefilled
    document = yaml.safe_load(prefilled)
    assert document["image_acquisitions"][0]["instrument"] == "Nikon Ti2 Inverted"
    report = study_metadata.validate(document)
    missing = {problem.path for problem in report.missing}
    assert "image_acquisitions[0].instrument" not in missing and "image_acquisitions[0].parameters" in missing
    scope = images["scope.ome.tif"].acquisition
    assert scope["instrument"] == "Nikon Ti2 Inverted"
    assert scope["objective"] == "Nikon Plan Apo 60x NA 1.4 Oil"
    assert scope["detector"] == "Hamamatsu ORCA-Fusion CMOS"
    assert scope["acquired_at"] == "2026-03-04T10:11:12"
    assert scope["wavelengths"].endswith("excitation 405 nm, emission 460 nm")
    assert images["plain.tif"].acquisition == {
        "acquired_at": "2026:01:02 03:04:05",
        "software": "MetaMorph 7.10",
    }


def test_biosamples_name_cell_types_and_organism_parts_with_cl_and_uberon_terms(tmp_path: Path) -> None:
    data = hela()
    data["biosamples"][0].update(cell_types=["astrocyte", "CL:0000540"], organism_parts=["UBERON:0000955"])
    report = check(data, VOCABULARIES)
    assert report.complete and report.rembi is not None, [str(p) for p in report.problems]
    biosample = report.rembi.biosamples[0]
    assert [(t.id, t.label) for t in biosample.cell_types] == [
        ("CL:0000127", "astrocyte"),
        ("CL:0000540", "neuron"),
    ]
    assert [(t.id, t.label) for t in biosample.organism_parts] == [("UBERON:0000955", "brain")]

    data["biosamples"][0].update(cell_types=["astrocytes", "CL:9999999"], organism_parts=["CL:0000182"])
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(data))
    refused = run_cli("metadata", "validate", tmp_path / "study.yaml")
    assert refused.returncode == 2
    problems = refused.stderr.splitlines()
    assert (
        "error: biosamples[0].cell_types[0]: 'astrocytes' is not a CL term; did you mean CL:0000127 "
        "(astrocyte)?"
    ) in problems
    assert (
        "error: biosamples[0].cell_types[1]: 'CL:9999999' is not in the bundled CL (2022-11-25); look one "
        "up with 'fairimage ontology search cl WORDS'"
    ) in problems
    assert (
        "error: biosamples[0].organism_parts[0]: 'CL:0000182' is not a UBERON term; it is CL's "
        "'hepatocyte': write it under cell_types"
    ) in problems
