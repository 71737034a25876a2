"""OAI-PMH 2.0 responses (https://www.openarchives.org/OAI/openarchivesprotocol.html) as XML: the verbs
Identify, ListMetadataFormats, ListSets, ListIdentifiers, ListRecords and GetRecord, in the formats oai_dc
(Dublin Core) and datacite (DataCite kernel 4). Pure: records come from the caller.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime
from typing import Any

OAI = "http://www.openarchives.org/OAI/2.0/"
OAI_DC = "http://www.openarchives.org/OAI/2.0/oai_dc/"
DC = "http://purl.org/dc/elements/1.1/"
DATACITE = "http://datacite.org/schema/kernel-4"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
FORMATS = {
    "oai_dc": (OAI_DC, "http://www.openarchives.org/OAI/2.0/oai_dc.xsd"),
    "datacite": (DATACITE, "http://schema.datacite.org/meta/kernel-4.5/metadata.xsd"),
}
for prefix, uri in (("", OAI), ("oai_dc", OAI_DC), ("dc", DC), ("datacite", DATACITE), ("xsi", XSI)):
    ET.register_namespace(prefix, uri)


class OaiError(Exception):
    """An OAI-PMH error condition: its code (badVerb, badArgument, ...) and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Record:
    identifier: str  # oai:host:study-…
    datestamp: datetime
    dublin_core: dict[
        str, list[str]
    ]  # title, creator, subject, description, date, type, identifier, rights ...
    datacite: dict[str, Any]  # model.exports.datacite attributes


def utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def envelope(base_url: str, request_args: dict[str, str], now: datetime) -> tuple[ET.Element, ET.Element]:
    """The OAI-PMH root with responseDate and request; returns (root, request element)."""
    root = ET.Element(f"{{{OAI}}}OAI-PMH")
    root.set(f"{{{XSI}}}schemaLocation", f"{OAI} http://www.openarchives.org/OAI/2.0/OAI-PMH.xsd")
    ET.SubElement(root, f"{{{OAI}}}responseDate").text = utc(now)
    request = ET.SubElement(root, f"{{{OAI}}}request", {key: value for key, value in request_args.items()})
    request.text = base_url
    return root, request


def error(root: ET.Element, request: ET.Element, failure: OaiError) -> ET.Element:
    if failure.code in ("badVerb", "badArgument"):
        request.attrib.clear()  # the spec: no attributes echoed for these errors
    ET.SubElement(root, f"{{{OAI}}}error", {"code": failure.code}).text = failure.message
    return root


def identify(root: ET.Element, base_url: str, name: str, earliest: datetime, admin_email: str) -> None:
    node = ET.SubElement(root, f"{{{OAI}}}Identify")
    for tag, value in (
        ("repositoryName", name),
        ("baseURL", base_url),
        ("protocolVersion", "2.0"),
        ("adminEmail", admin_email),
        ("earliestDatestamp", utc(earliest)),
        ("deletedRecord", "no"),
        ("granularity", "YYYY-MM-DDThh:mm:ssZ"),
    ):
        ET.SubElement(node, f"{{{OAI}}}{tag}").text = value


def metadata_formats(root: ET.Element) -> None:
    node = ET.SubElement(root, f"{{{OAI}}}ListMetadataFormats")
    for prefix, (namespace, schema) in FORMATS.items():
        entry = ET.SubElement(node, f"{{{OAI}}}metadataFormat")
        ET.SubElement(entry, f"{{{OAI}}}metadataPrefix").text = prefix
        ET.SubElement(entry, f"{{{OAI}}}schema").text = schema
        ET.SubElement(entry, f"{{{OAI}}}metadataNamespace").text = namespace


def header(parent: ET.Element, record: Record) -> None:
    node = ET.SubElement(parent, f"{{{OAI}}}header")
    ET.SubElement(node, f"{{{OAI}}}identifier").text = record.identifier
    ET.SubElement(node, f"{{{OAI}}}datestamp").text = utc(record.datestamp)


def record_element(parent: ET.Element, record: Record, prefix: str) -> None:
    node = ET.SubElement(parent, f"{{{OAI}}}record")
    header(node, record)
    metadata = ET.SubElement(node, f"{{{OAI}}}metadata")
    if prefix == "oai_dc":
        dc = ET.SubElement(metadata, f"{{{OAI_DC}}}dc")
        dc.set(f"{{{XSI}}}schemaLocation", f"{OAI_DC} {FORMATS['oai_dc'][1]}")
        for element, values in record.dublin_core.items():
            for value in values:
                ET.SubElement(dc, f"{{{DC}}}{element}").text = value
    else:
        metadata.append(datacite_xml(record.datacite))


def resumption(parent: ET.Element, token: str | None, total: int, cursor: int) -> None:
    attributes = {"completeListSize": str(total), "cursor": str(cursor)}
    ET.SubElement(parent, f"{{{OAI}}}resumptionToken", attributes).text = token or ""


def datacite_xml(attributes: dict[str, Any]) -> ET.Element:
    """DataCite kernel-4 XML from the JSON attributes of ``model.exports.datacite``."""

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        node = ET.SubElement(parent, f"{{{DATACITE}}}{tag}", {k: v for k, v in attrs.items() if v})
        if text is not None:
            node.text = str(text)
        return node

    resource = ET.Element(f"{{{DATACITE}}}resource")
    resource.set(f"{{{XSI}}}schemaLocation", f"{DATACITE} {FORMATS['datacite'][1]}")
    if attributes.get("doi"):
        sub(resource, "identifier", attributes["doi"], identifierType="DOI")
    creators = sub(resource, "creators")
    for creator in attributes["creators"]:
        node = sub(creators, "creator")
        sub(node, "creatorName", creator["name"], nameType=creator.get("nameType", ""))
        for identifier in creator.get("nameIdentifiers", []):
            sub(
                node,
                "nameIdentifier",
                identifier["nameIdentifier"],
                nameIdentifierScheme=identifier["nameIdentifierScheme"],
                schemeURI=identifier.get("schemeUri", ""),
            )
        for affiliation in creator.get("affiliation", []):
            sub(node, "affiliation", affiliation["name"])
    titles = sub(resource, "titles")
    for title in attributes["titles"]:
        sub(titles, "title", title["title"])
    sub(resource, "publisher", attributes["publisher"]["name"])
    sub(resource, "publicationYear", str(attributes["publicationYear"]))
    types = attributes["types"]
    sub(
        resource,
        "resourceType",
        types.get("resourceType", ""),
        resourceTypeGeneral=types["resourceTypeGeneral"],
    )

    def listed(container: str, element: str, key: str | None, always: bool = False, **xml: str) -> None:
        """A DataCite list: an element per item of ``attributes[container]``, its text the item's ``key``
        (the item itself where None) and each XML attribute from the JSON key ``xml`` names."""
        items = attributes.get(container) or []
        if not items and not always:
            return
        node = sub(resource, container)
        for item in items:
            text = item if key is None else item[key]
            sub(node, element, text, **{name: item.get(json, "") for name, json in xml.items()})

    listed(
        "subjects", "subject", "subject", subjectScheme="subjectScheme", schemeURI="schemeUri",
        valueURI="valueUri", classificationCode="classificationCode",
    )  # fmt: skip
    listed(
        "alternateIdentifiers", "alternateIdentifier", "alternateIdentifier", always=True,
        alternateIdentifierType="alternateIdentifierType",
    )  # fmt: skip
    listed(
        "relatedIdentifiers", "relatedIdentifier", "relatedIdentifier",
        relatedIdentifierType="relatedIdentifierType", relationType="relationType",
    )  # fmt: skip
    if attributes.get("version"):
        sub(resource, "version", attributes["version"])
    listed("formats", "format", None)
    listed(
        "rightsList", "rights", "rights", rightsURI="rightsUri", rightsIdentifier="rightsIdentifier",
        rightsIdentifierScheme="rightsIdentifierScheme", schemeURI="schemeUri",
    )  # fmt: skip
    listed("descriptions", "description", "description", always=True, descriptionType="descriptionType")
    return resource


def to_bytes(root: ET.Element) -> bytes:
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
