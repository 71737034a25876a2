"""The bundled ontologies: lookups by CURIE, IRI, label and synonym, suggestions, autocomplete and the
hierarchy, over the real bundle files and over HTTP; and the build script on an OBO file it is given."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from fairimage import ontology
from fairimage.model.curation.ontology import broader
from fairimage.services.repository import init_repository
from fairimage.settings import load_settings
from tests.conftest import LiveServer

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "build_ontologies.py"


@pytest.mark.parametrize(
    "text",
    [
        "FBbi:00000251",
        "fbbi:00000251",
        "FBBI_00000251",
        "obo:FBbi_00000251",
        "http://purl.obolibrary.org/obo/FBbi_00000251",
        "confocal microscopy",
        "Confocal  Microscopy",
    ],
)
def test_a_term_is_found_by_every_spelling_of_its_identifier_and_its_label(text: str) -> None:
    found = ontology.fbbi().find(text)
    assert found is not None and found.term.id == "FBbi:00000251"
    assert found.term.iri == "http://purl.obolibrary.org/obo/FBbi_00000251"


@pytest.mark.parametrize(
    "text",
    [
        "EDAM:operation_Image_segmentation",
        "edam:operation_Image_segmentation",
        "EDAM_operation_Image_segmentation",
        "http://edamontology.org/operation_Image_segmentation",
        "image segmentation",
    ],
)
def test_edam_identifiers_keep_their_own_underscores(text: str) -> None:
    found = ontology.edam().find(text)
    assert found is not None and found.term.id == "EDAM:operation_Image_segmentation"
    assert found.term.iri == "http://edamontology.org/operation_Image_segmentation"


def test_edam_bioimaging_operations_and_topics_have_their_hierarchy() -> None:
    edam = ontology.edam()
    watershed = [term.label for term in edam.ancestors("EDAM:operation_Watershed")]
    assert watershed[:3] == ["Region growing", "Image segmentation", "Image analysis"]
    assert "EDAM:topic_Light-sheet_microscopy" in edam.descendants("EDAM:topic_Fluorescent_microscopy")
    spim = edam.find("Selective plane illumination microscopy (SPIM)")
    assert spim is not None and spim.term.label == "Light-sheet microscopy"
    assert edam.suggest("cell segmentaton")[0].label == "Cell segmentation"


def test_synonyms_and_near_misses() -> None:
    taxa = ontology.ncbitaxon()
    mouse = taxa.find("mouse")
    assert mouse is not None and (mouse.term.id, mouse.how) == ("NCBITaxon:10090", "synonym")
    assert [term.id for term in taxa.suggest("Mus muscuuls")] == ["NCBITaxon:10090"]
    assert taxa.find("NCBITaxon:999999999") is None and taxa.find("FBbi:00000251") is None
    dapi = ontology.fbbi().find("DAPI")
    assert dapi is not None and dapi.term.label == "4',6-diamidino-2-phenylindole (DAPI)"


def test_the_hierarchy_runs_through_multiple_parents() -> None:
    fbbi = ontology.fbbi()
    fluorescence = fbbi.descendants("FBbi:00000246")
    assert {"FBbi:00000251", "FBbi:00000253", "FBbi:00000254", "FBbi:00000366"} <= fluorescence
    assert "FBbi:00000243" not in fluorescence  # bright-field is light microscopy, not fluorescence
    ct = [term.label for term in fbbi.ancestors("FBbi:00001002")]
    assert {"X-ray tomography", "computed tomography", "tomography", "imaging method"} <= set(ct)
    lineage = [term.label for term in ontology.ncbitaxon().ancestors("NCBITaxon:10090")]
    assert lineage[:4] == ["Mus", "Muridae", "Rodentia", "Mammalia"]


def test_autocomplete_ranks_label_prefixes_first() -> None:
    labels = [term.label for term in ontology.fbbi().complete("conf", limit=5)]
    assert labels[0] == "confocal microscopy" and all("confocal" in label for label in labels)
    assert [term.label for term in ontology.fbbi().complete("FBbi:00000369")] == ["SPIM"]
    assert ontology.ncbitaxon().complete("zebra")[0].label == "Danio rerio"


def test_bundles_record_their_release_and_licence() -> None:
    for name in ontology.NAMES:
        bundle = ontology.ontology(name)
        assert bundle.version and bundle.license and bundle.source.startswith("https://github.com/")
        ids = {term.id for term in bundle.terms}
        dangling = {parent for term in bundle.terms for parent in term.parents} - ids
        assert not dangling, f"{name}: parents outside the bundle {sorted(dangling)}"
    assert ontology.fbbi().version == "2020-11-06"
    assert (ontology.edam().version, len(ontology.edam().terms)) == ("alpha06", 341)


def test_terms_over_http(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "repo")
    init_repository(settings).close()
    with LiveServer(settings) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        listed = {entry["name"]: entry for entry in client.get("/api/ontologies").json()}
        assert set(listed) == {"fbbi", "ncbitaxon", "edam", "cl", "uberon", "duo"}
        assert listed["fbbi"]["version"] == "2020-11-06" and listed["edam"]["version"] == "alpha06"
        found = client.get("/api/ontologies/fbbi/terms", params={"q": "spinning"}).json()
        assert found[0]["id"] == "FBbi:00000253" and found[0]["iri"].endswith("FBbi_00000253")
        term = client.get("/api/ontologies/ncbitaxon/terms/http://purl.obolibrary.org/obo/NCBITaxon_9606")
        assert term.status_code == 200 and term.json()["label"] == "Homo sapiens"
        assert term.json()["ancestors"][0]["label"] == "Hominidae"
        confocal = client.get("/api/ontologies/fbbi/terms/FBbi:00000251").json()
        assert {child["label"] for child in confocal["children"]} >= {"spinning disk confocal microscopy"}
        missing = client.get("/api/ontologies/fbbi/terms/FBbi:99999999")
        assert (
            missing.status_code == 404
            and "not a term of the bundled FBbi" in missing.json()["error"]["message"]
        )
        tracking = client.get("/api/ontologies/edam/terms", params={"q": "cell track"}).json()
        assert tracking[0]["id"] == "EDAM:operation_Cell_tracking"
        assert tracking[0]["iri"] == "http://edamontology.org/operation_Cell_tracking"
        unknown = client.get("/api/ontologies/mesh/terms", params={"q": "x"})
        assert unknown.status_code == 404 and "fbbi, ncbitaxon" in unknown.json()["error"]["message"]


def test_cell_types_and_anatomy_are_linked_by_part_of() -> None:
    cl, uberon = ontology.cl(), ontology.uberon()
    astrocyte = cl.find("astrocyte")
    assert astrocyte is not None and astrocyte.term.id == "CL:0000127"
    assert {"CL:0000540", "CL:0000127"} <= cl.descendants("CL:0002319")  # neuron, astrocyte: neural cells
    neural = cl.term("CL:0002319")
    assert neural is not None and neural.part_of == ("UBERON:0001016",)  # by definition: nervous system
    above = [term.label for term in broader("CL:0000127", ontology.vocabularies())]
    assert "nervous system" in above and "cell" in above
    liver = [term.label for term in broader("CL:0000182", ontology.vocabularies())]  # hepatocyte
    assert "liver" in liver and "nervous system" not in liver
    brain = [term.label for term in broader("UBERON:0000955", ontology.vocabularies())]
    assert {"central nervous system", "nervous system"} <= set(brain)
    assert [term.label for term in cl.suggest("astrocytes")] == ["astrocyte"]  # a plural means its name
    assert [term.label for term in uberon.suggest("livers")] == ["liver"]


def test_cl_and_uberon_over_http(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "repo")
    init_repository(settings).close()
    with LiveServer(settings) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        listed = {entry["name"]: entry for entry in client.get("/api/ontologies").json()}
        assert (listed["cl"]["version"], listed["uberon"]["version"]) == ("2022-11-25", "2021-07-25")
        for name in ("cl", "uberon"):
            assert listed[name]["license"].startswith("CC BY 4.0")
            assert listed[name]["source"].startswith("https://github.com/obophenotype/")
        found = client.get("/api/ontologies/cl/terms", params={"q": "astro"}).json()
        assert found[0]["id"] == "CL:0000127" and found[0]["iri"].endswith("CL_0000127")
        neural = client.get("/api/ontologies/cl/terms/CL:0002319").json()
        assert neural["part_of"] == ["UBERON:0001016"]
        assert {"neuron", "neuron associated cell"} <= {child["label"] for child in neural["children"]}
        liver = client.get("/api/ontologies/uberon/terms", params={"q": "liver"}).json()
        assert liver[0]["id"] == "UBERON:0002107"


def test_the_build_script_links_cell_types_to_the_anatomy_bundle(tmp_path: Path) -> None:
    uberon_obo = tmp_path / "efo-slim.obo"
    uberon_obo.write_text(
        "format-version: 1.2\nontology: uberon/subsets/efo-slim\n\n"
        "[Term]\nid: UBERON:0001016\nname: nervous system\n"
        'synonym: "neurological system" EXACT []\nsynonym: "nerve net" NARROW []\n\n'
        "[Term]\nid: UBERON:0000955\nname: brain\nrelationship: part_of UBERON:0001016 ! nervous system\n\n"
        "[Term]\nid: UBERON:0000001\nname: old part\nis_obsolete: true\n"
    )
    cl_basic = tmp_path / "cl-basic.obo"
    cl_basic.write_text(
        "format-version: 1.2\ndata-version: cl/releases/2030-01-01/cl-basic.owl\n\n"
        "[Term]\nid: CL:0000000\nname: cell\n\n"
        "[Term]\nid: CL:0002319\nname: neural cell\nis_a: CL:0000000 ! cell\n\n"
        '[Term]\nid: CL:0000540\nname: neuron\nsynonym: "nerve cell" EXACT []\n'
        "is_a: CL:0002319 ! neural cell\n\n"
        "[Term]\nid: GO:0005623\nname: not a cell type\nis_a: CL:0000000\n"
    )
    cl_base = tmp_path / "cl-base.obo"
    cl_base.write_text(
        "format-version: 1.2\ndata-version: cl/releases/2030-01-01/cl-base.owl\n\n"
        "[Term]\nid: CL:0002319\nname: neural cell\nintersection_of: CL:0000000 ! cell\n"
        "intersection_of: BFO:0000050 UBERON:0001016 ! nervous system\n\n"
        "[Term]\nid: CL:0000540\nname: neuron\nrelationship: BFO:0000050 UBERON:9999999 ! not bundled\n"
    )
    anatomy, cells = tmp_path / "uberon.json", tmp_path / "cl.json"
    build = [sys.executable, str(SCRIPT)]
    uberon = subprocess.run(
        [*build, "uberon", str(uberon_obo), "--version", "2030-02-02", "--out", str(anatomy)],
        capture_output=True,
        text=True,
    )
    assert uberon.returncode == 0, uberon.stderr
    assert json.loads(anatomy.read_text())["terms"] == [
        {
            "id": "UBERON:0000955",
            "label": "brain",
            "synonyms": [],
            "parents": [],
            "part_of": ["UBERON:0001016"],
        },
        {
            "id": "UBERON:0001016",
            "label": "nervous system",
            "synonyms": ["neurological system"],
            "parents": [],
            "part_of": [],
        },
    ]
    command = [*build, "cl", str(cl_basic), "--part-of", str(cl_base), "--anatomy", str(anatomy)]
    result = subprocess.run([*command, "--out", str(cells)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    bundle = json.loads(cells.read_text())
    assert bundle["version"] == "2030-01-01" and bundle["license"].startswith("CC BY 4.0")
    assert bundle["source"] == (
        "https://github.com/obophenotype/cell-ontology (cl-basic.obo and cl-base.obo, release 2030-01-01)"
    )
    assert [(t["id"], t["parents"], t["part_of"]) for t in bundle["terms"]] == [
        ("CL:0000000", [], []),
        ("CL:0000540", ["CL:0002319"], []),
        ("CL:0002319", ["CL:0000000"], ["UBERON:0001016"]),
    ]


def test_the_build_script_keeps_the_subtrees_and_drops_obsolete_terms(tmp_path: Path) -> None:
    obo = tmp_path / "fbbi.obo"
    obo.write_text(
        "format-version: 1.2\ndata-version: releases/2030-01-01\nontology: fbbi\n\n"
        "[Term]\nid: FBbi:00000222\nname: imaging method\nis_a: FBbi_root:00000000 ! root\n\n"
        '[Term]\nid: FBbi:00000265\nname: recorded image\nsynonym: "photograph" RELATED []\n'
        "is_a: FBbi:00000222 ! imaging method\n\n"
        "[Term]\nid: FBbi:00000242\nname: wide field light micrograph\nis_obsolete: true\n\n"
        "[Term]\nid: FBbi:00000031\nname: visualization method\nis_a: FBbi_root:00000000\n\n"
        "[Typedef]\nid: FBbi:00000346\nname: makes_use_of\n"
    )
    out = tmp_path / "fbbi.json"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "fbbi", str(obo), "--out", str(out)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    bundle = json.loads(out.read_text())
    assert bundle["version"] == "2030-01-01" and bundle["license"].startswith("CC BY 4.0")
    assert bundle["terms"] == [
        {"id": "FBbi:00000222", "label": "imaging method", "synonyms": [], "parents": []},
        {
            "id": "FBbi:00000265",
            "label": "recorded image",
            "synonyms": ["photograph"],
            "parents": ["FBbi:00000222"],
        },
    ]


def test_the_build_script_reads_edam_bioimagings_bioportal_table(tmp_path: Path) -> None:
    edam = "http://edamontology.org/"
    header = "Class ID\tPreferred Label\tSynonyms\tDefinitions\tObsolete\tCUI\tSemantic Types\tParents\n"
    rows = [
        (f"{edam}operation_0004", "Operation", "Function", "FALSE", "http://www.w3.org/2002/07/owl#Thing"),
        (f"{edam}operation_Image_segmentation", "Image segmentation", "", "FALSE", f"{edam}operation_0004"),
        (
            f"{edam}operation_Watershed",
            "Watershed segmentation",
            "Watershed transformation|Watershed-based segmentation",
            "FALSE",
            f"{edam}operation_Image_segmentation",
        ),
        (f"{edam}operation_Old", "Old operation", "", "TRUE", f"{edam}operation_0004"),
        ("http://example.org/elsewhere", "Not EDAM", "", "FALSE", f"{edam}operation_0004"),
    ]
    table = tmp_path / "EDAM-bioimaging_alpha99.tsv"
    table.write_text(
        header
        + "".join(f"{i}\t{label}\t{syn}\t\t{obs}\t\t\t{parents}\n" for i, label, syn, obs, parents in rows),
        encoding="utf-8",
    )
    out = tmp_path / "edam.json"
    command = [sys.executable, str(SCRIPT), "edam", str(table), "--out", str(out)]
    refused = subprocess.run(command, capture_output=True, text=True)
    assert refused.returncode != 0 and "give the release with --version" in refused.stderr
    result = subprocess.run([*command, "--version", "alpha99"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    bundle = json.loads(out.read_text())
    assert bundle["version"] == "alpha99" and bundle["source"].endswith("EDAM-bioimaging_alpha99.tsv)")
    assert bundle["terms"] == [
        {"id": "EDAM:operation_0004", "label": "Operation", "synonyms": ["Function"], "parents": []},
        {
            "id": "EDAM:operation_Image_segmentation",
            "label": "Image segmentation",
            "synonyms": [],
            "parents": ["EDAM:operation_0004"],
        },
        {
            "id": "EDAM:operation_Watershed",
            "label": "Watershed segmentation",
            "synonyms": ["Watershed transformation", "Watershed-based segmentation"],
            "parents": ["EDAM:operation_Image_segmentation"],
        },
    ]
