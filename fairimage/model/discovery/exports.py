"""A study's metadata in the forms others harvest: RO-Crate 1.3 (``ro-crate-metadata.json``) and DataCite
4.5 (JSON, as DataCite's REST API takes it for DOI registration). Pure: the caller passes what is known.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fairimage.model.curation.checks import LICENSES
from fairimage.model.curation.rembi import Rembi, TermRef
from fairimage.model.discovery.jsonld import TERM_SETS, Links, correlative_collection, source_type, term_iri
from fairimage.model.study import Image, Study
from fairimage.model.viewing.correlative import CorrelativeSet

ROCRATE = "https://w3id.org/ro/crate/1.3"
ROCRATE_CONTEXT = "https://w3id.org/ro/crate/1.3/context"


def rocrate(
    study: Study,
    rembi: Rembi,
    images: list[Image],
    links: Links,
    published: str,
    copied: dict[str, str] | None = None,
    correlative: Sequence[CorrelativeSet] = (),
) -> dict[str, Any]:
    """The RO-Crate metadata of a study: the root Dataset with its licence, authors, keywords and ontology
    terms, ``rembi.json``, and its images, either copied into the crate (``copied``: image id -> folder)
    or referenced by their OME-Zarr URLs."""
    info = rembi.study
    root: dict[str, Any] = {
        "@id": "./",
        "@type": "Dataset",
        "name": info.title or study.name,
        "description": info.description or study.description or f"Images of the study {study.name}.",
        "datePublished": published,
        "identifier": links.pid(study.id),
        "url": links.page(f"/studies/{study.id}"),
        "hasPart": [{"@id": "rembi.json"}],
    }
    entities: list[dict[str, Any]] = [
        {
            "@id": "ro-crate-metadata.json",
            "@type": "CreativeWork",
            "conformsTo": {"@id": ROCRATE},
            "about": {"@id": "./"},
        },
        root,
        {
            "@id": "rembi.json",
            "@type": "File",
            "name": "REMBI metadata",
            "encodingFormat": "application/json",
            "description": "The study's REMBI metadata, as fairimage curates it",
        },
    ]
    license_url = LICENSES.get(info.license or "")
    if license_url:
        root["license"] = {"@id": license_url}
        entities.append(
            {"@id": license_url, "@type": "CreativeWork", "name": info.license, "identifier": info.license}
        )
    if info.keywords:
        root["keywords"] = list(info.keywords)
    authors = []
    for index, person in enumerate(p for p in info.authors if p.name):
        author_id = f"https://orcid.org/{person.orcid}" if person.orcid else f"#author-{index}"
        authors.append({"@id": author_id})
        entity: dict[str, Any] = {"@id": author_id, "@type": "Person", "name": person.name}
        if person.affiliation:
            entity["affiliation"] = person.affiliation
        entities.append(entity)
    if authors:
        root["author"] = authors
    terms: dict[str, dict[str, Any]] = {}
    for component in rembi.study_components:
        for method in component.imaging_methods:
            if method.id:
                terms[method.id] = {
                    "@id": term_iri(method.id),
                    "@type": "DefinedTerm",
                    "name": method.label,
                    "termCode": method.id,
                    "inDefinedTermSet": {"@id": TERM_SETS["FBbi"]},
                }
    if terms:
        root["measurementTechnique"] = [{"@id": term["@id"]} for term in terms.values()]
        entities += list(terms.values())
    taxa = {
        b.organism.id: b.organism.label for b in rembi.biosamples if b.organism is not None and b.organism.id
    }
    if taxa:
        root["about"] = [{"@id": term_iri(curie)} for curie in taxa]
        entities += [
            {"@id": term_iri(curie), "@type": "Taxon", "name": label} for curie, label in taxa.items()
        ]
    entity_ids: dict[str, str] = {}
    for image in images:
        folder = (copied or {}).get(image.id)
        image_id = f"{folder}/" if folder else links.zarr(image.id)
        entity_ids[image.id] = image_id
        root["hasPart"].append({"@id": image_id})
        entities.append(
            {
                "@id": image_id,
                "@type": "Dataset",
                "name": image.name,
                "description": f"OME-Zarr 0.5 image {links.pid(image.id)} ({image.axis_names} "
                f"{' x '.join(map(str, image.shape))}, {image.dtype}) of {image.original_file.name}",
                "identifier": links.pid(image.id),
                "conformsTo": {"@id": "https://ngff.openmicroscopy.org/0.5/"},
                **({} if folder else {"url": links.zarr(image.id)}),
                **_origin(image, links, entities),
            }
        )
    for found in correlative:  # contextual entities: the sets the root mentions, over its image entities
        entity = correlative_collection(found, lambda image: entity_ids.get(image, links.zarr(image)))
        transforms = [
            {"@id": f"{entity['@id']}-transform-{index}", **value}
            for index, value in enumerate(entity["additionalProperty"])
        ]  # RO-Crate is flat: each transform an entity of its own, referred to by id
        entity["additionalProperty"] = [{"@id": value["@id"]} for value in transforms]
        root.setdefault("mentions", []).append({"@id": entity["@id"]})
        entities += [entity, *transforms]
    return {"@context": ROCRATE_CONTEXT, "@graph": entities}


def _origin(image: Image, links: Links, entities: list[dict[str, Any]]) -> dict[str, Any]:
    """An image's digitalSourceType, flattened as RO-Crate wants it: the model that made an AI-generated
    image is an entity of its own, referred to by id."""
    said = source_type(image, links)
    found: dict[str, Any] = {"digitalSourceType": {"@id": said["digitalSourceType"]}}
    if image.generated is not None:
        model = f"#model-{image.generated.by}"
        if not any(entity["@id"] == model for entity in entities):
            entities.append({"@id": model, "@type": "SoftwareApplication", "name": image.generated.by})
        found["creator"] = {"@id": model}
        found["isBasedOn"] = said.get("isBasedOn", [])
        found["disambiguatingDescription"] = image.generated.statement
    return found


def doi(prefix: str, study_id: str, version: int | None = None) -> str:
    """The DOI of a study (its concept DOI, for all its versions) or of one published version: the node's
    prefix and the PID, so it never changes."""
    return f"{prefix}/{study_id}" + (f".v{version}" if version is not None else "")


@dataclass(frozen=True)
class Citable:
    """What a DataCite record is for: the study (``version`` None: its concept DOI, pointing at every
    published version) or one published version, and the node's DOI prefix, if it has one."""

    prefix: str | None
    published: tuple[int, ...] = ()  # the study's published versions
    version: int | None = None


def datacite(
    study: Study, rembi: Rembi, links: Links, year: int, version: int | None, citable: Citable | None = None
) -> dict[str, Any]:
    """DataCite 4.5 metadata (the ``attributes`` of a DataCite REST API ``dois`` record) for registering a
    DOI for the study: creators, titles, publisher, year, resource type, subjects (with their ontology
    schemes and IRIs), rights, descriptions and the landing page; with a DOI prefix, the DOI itself and
    how the study's and its versions' DOIs relate."""
    info = rembi.study
    creators = []
    for person in info.authors:
        if not person.name:
            continue
        creator: dict[str, Any] = {"name": person.name, "nameType": "Personal"}
        if person.orcid:
            creator["nameIdentifiers"] = [
                {
                    "nameIdentifier": f"https://orcid.org/{person.orcid}",
                    "nameIdentifierScheme": "ORCID",
                    "schemeUri": "https://orcid.org",
                }
            ]
        if person.affiliation:
            creator["affiliation"] = [{"name": person.affiliation}]
        creators.append(creator)
    subjects: list[dict[str, Any]] = [{"subject": keyword} for keyword in info.keywords]
    terms = [
        *(("FBbi", "FBbi", m) for c in rembi.study_components for m in c.imaging_methods),
        *(("EDAM-bioimaging", "EDAM", topic) for topic in info.topics),
        *(("NCBITaxon", "NCBITaxon", b.organism) for b in rembi.biosamples if b.organism is not None),
    ]
    subjects += [_subject(scheme, term_set, ref) for scheme, term_set, ref in terms if ref.id]
    attributes: dict[str, Any] = {
        "types": {"resourceTypeGeneral": "Dataset", "resourceType": "Bioimaging data (OME-Zarr)"},
        "creators": creators or [{"name": "unknown", "nameType": "Organizational"}],
        "titles": [{"title": info.title or study.name}],
        "publisher": {"name": "fairimage"},
        "publicationYear": year,
        "subjects": subjects,
        "descriptions": [
            {
                "description": info.description or study.description or study.name,
                "descriptionType": "Abstract",
            }
        ],
        "url": links.page(f"/studies/{study.id}"),
        "alternateIdentifiers": [
            {"alternateIdentifier": links.pid(study.id), "alternateIdentifierType": "URL"}
        ],
        "formats": ["OME-Zarr 0.5"],
        "schemaVersion": "http://datacite.org/schema/kernel-4",
    }
    if version is not None:
        attributes["version"] = str(version)
    license_url = LICENSES.get(info.license or "")
    if license_url:
        attributes["rightsList"] = [
            {
                "rights": info.license,
                "rightsUri": license_url,
                "rightsIdentifier": (info.license or "").lower(),
                "rightsIdentifierScheme": "SPDX",
                "schemeUri": "https://spdx.org/licenses/",
            }
        ]
    for publication in info.publications:
        if publication.doi:
            attributes.setdefault("relatedIdentifiers", []).append(
                {
                    "relatedIdentifier": publication.doi,
                    "relatedIdentifierType": "DOI",
                    "relationType": "IsDescribedBy",
                }
            )
    _identify(attributes, study, links, citable or Citable(None))
    return attributes


def _identify(attributes: dict[str, Any], study: Study, links: Links, citable: Citable) -> None:
    """The record's DOI, its local PID as an alternate identifier, and its versions' DOIs; or, with no DOI
    prefix configured, a plain statement that it has none."""
    if citable.version is not None:
        attributes["version"] = str(citable.version)
        attributes["url"] = links.page(f"/studies/{study.id}/versions/{citable.version}")
        attributes["alternateIdentifiers"] = [
            {
                "alternateIdentifier": links.pid(f"{study.id}.v{citable.version}"),
                "alternateIdentifierType": "URL",
            }
        ]
    if citable.prefix is None:
        attributes["descriptions"].append(
            {
                "description": "No DOI: this repository has no doi_prefix configured (fairimage.toml); the "
                "record is identified by its persistent URL (alternateIdentifier).",
                "descriptionType": "TechnicalInfo",
            }
        )
        return
    found = doi(citable.prefix, study.id, citable.version)
    attributes |= {"doi": found, "prefix": citable.prefix, "suffix": found.split("/", 1)[1]}
    related = attributes.setdefault("relatedIdentifiers", [])
    if citable.version is None:
        related += [
            {"relatedIdentifier": doi(citable.prefix, study.id, n), "relatedIdentifierType": "DOI",
             "relationType": "HasVersion"}
            for n in citable.published
        ]  # fmt: skip
    else:
        related.append(
            {"relatedIdentifier": doi(citable.prefix, study.id), "relatedIdentifierType": "DOI",
             "relationType": "IsVersionOf"}
        )  # fmt: skip


def _subject(scheme: str, term_set: str, ref: TermRef) -> dict[str, Any]:
    """A DataCite subject for an ontology term: its label, scheme and IRI."""
    return {
        "subject": ref.label,
        "subjectScheme": scheme,
        "schemeUri": TERM_SETS[term_set],
        "valueUri": term_iri(ref.id or ""),
        "classificationCode": ref.id,
    }
