"""OAI-PMH 2.0 as a harvester sees it: every verb, Dublin Core and DataCite records of what anonymous
callers may discover, resumption tokens, date ranges and the protocol's error codes."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from fairimage.model.governance.policy import operator
from fairimage.services.curation import study_metadata
from fairimage.services.governance import policies
from fairimage.services.ingest.intake import ingest_paths
from fairimage.services.repository import init_repository
from fairimage.settings import load_settings
from tests import samples
from tests.conftest import LiveServer
from tests.test_curation import hela

ADMIN = operator("test")
NS = {
    "o": "http://www.openarchives.org/OAI/2.0/",
    "dc": "http://purl.org/dc/elements/1.1/",
    "d": "http://datacite.org/schema/kernel-4",
}


@pytest.fixture
def harvest(tmp_path: Path) -> Iterator[httpx.Client]:
    settings = load_settings(tmp_path / "repo", oai_page_size=2)
    repository = init_repository(settings)
    for index, (name, policy) in enumerate(
        [
            ("One", "public"),
            ("Two", "public"),
            ("Three", "public"),
            ("Closed", "restricted"),
            ("Hidden", "private"),
        ]
    ):
        path = samples.png(tmp_path / f"{index}.png", np.full((8, 8), index, np.uint8))
        ingest_paths(repository, [path], study=name)
        study_metadata.set_metadata(
            repository, ADMIN, name, {**hela(), "study": {**hela()["study"], "title": f"{name} title"}}
        )
        if policy != "public":
            policies.set_policy(repository, ADMIN, name, policy)
    repository.close()
    with LiveServer(settings) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def ask(client: httpx.Client, **params: str) -> ET.Element:
    response = client.get("/oai", params=params)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/xml")
    return ET.fromstring(response.content)


def error_code(root: ET.Element) -> str | None:
    error = root.find("o:error", NS)
    return error.get("code") if error is not None else None


def test_identify_and_formats(harvest: httpx.Client) -> None:
    identify = ask(harvest, verb="Identify").find("o:Identify", NS)
    assert identify is not None
    assert identify.findtext("o:protocolVersion", namespaces=NS) == "2.0"
    assert identify.findtext("o:baseURL", namespaces=NS).endswith("/oai")
    assert identify.findtext("o:granularity", namespaces=NS) == "YYYY-MM-DDThh:mm:ssZ"
    formats = ask(harvest, verb="ListMetadataFormats").findall(".//o:metadataPrefix", NS)
    assert [f.text for f in formats] == ["oai_dc", "datacite"]
    assert error_code(ask(harvest, verb="ListSets")) == "noSetHierarchy"


def test_records_are_paged_and_only_what_may_be_discovered(harvest: httpx.Client) -> None:
    first = ask(harvest, verb="ListRecords", metadataPrefix="oai_dc")
    titles = [t.text for t in first.findall(".//dc:title", NS)]
    token = first.find(".//o:resumptionToken", NS)
    assert token is not None and token.get("completeListSize") == "4" and token.text
    assert len(titles) == 2
    second = ask(harvest, verb="ListRecords", resumptionToken=token.text)
    titles += [t.text for t in second.findall(".//dc:title", NS)]
    last = second.find(".//o:resumptionToken", NS)
    assert last is not None and not last.text and last.get("cursor") == "2"
    assert sorted(titles) == [
        "Closed title",
        "One title",
        "Three title",
        "Two title",
    ]  # never the private one
    record = first.find(".//o:record", NS)
    assert record is not None
    assert record.findtext(".//dc:rights", namespaces=NS) == "https://creativecommons.org/licenses/by/4.0/"
    assert "spinning disk confocal microscopy" in [s.text for s in record.findall(".//dc:subject", NS)]
    headers = ask(harvest, verb="ListIdentifiers", metadataPrefix="oai_dc").findall(".//o:header", NS)
    identifier = headers[0].findtext("o:identifier", namespaces=NS)
    assert identifier is not None and identifier.startswith("oai:127.0.0.1:study-")
    datacite = ask(harvest, verb="GetRecord", metadataPrefix="datacite", identifier=identifier)
    subject = datacite.find(".//d:subject[@subjectScheme='NCBITaxon']", NS)
    assert subject is not None and subject.get("valueURI") == "http://purl.obolibrary.org/obo/NCBITaxon_9606"
    assert datacite.find(".//d:creatorName", NS).text == "Ada Lovelace"
    assert (
        error_code(ask(harvest, verb="ListRecords", metadataPrefix="oai_dc", until="2000-01-01"))
        == "noRecordsMatch"
    )
    assert (
        error_code(ask(harvest, verb="ListRecords", metadataPrefix="oai_dc", **{"from": "2000-01-01"}))
        is None
    )
    posted = ET.fromstring(
        harvest.post("/oai", data={"verb": "ListIdentifiers", "metadataPrefix": "oai_dc"}).content
    )
    assert len(posted.findall(".//o:header", NS)) == 2


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"verb": "Bogus"}, "badVerb"),
        ({}, "badVerb"),
        ({"verb": "ListRecords"}, "badArgument"),
        ({"verb": "Identify", "extra": "x"}, "badArgument"),
        ({"verb": "ListRecords", "metadataPrefix": "mods"}, "cannotDisseminateFormat"),
        ({"verb": "ListRecords", "resumptionToken": "not-a-token"}, "badResumptionToken"),
        ({"verb": "ListRecords", "metadataPrefix": "oai_dc", "resumptionToken": "x"}, "badArgument"),
        ({"verb": "ListRecords", "metadataPrefix": "oai_dc", "from": "yesterday"}, "badArgument"),
        ({"verb": "ListRecords", "metadataPrefix": "oai_dc", "set": "x"}, "noSetHierarchy"),
        (
            {"verb": "GetRecord", "metadataPrefix": "oai_dc", "identifier": "oai:elsewhere:x"},
            "idDoesNotExist",
        ),
    ],
)
def test_protocol_errors(harvest: httpx.Client, params: dict[str, str], code: str) -> None:
    assert error_code(ask(harvest, **params)) == code
