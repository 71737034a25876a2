"""schema.org JSON-LD for studies (``Dataset``) and images (``ImageObject``), as landing pages embed it and
``/pid/{id}`` serves it for ``Accept: application/ld+json``. Pure: the caller passes what is known.

The context is inline (``@vocab`` schema.org), so any JSON-LD processor expands it offline; ontology terms
appear by their IRIs (imaging methods as ``measurementTechnique``, organisms as ``Taxon``s the dataset is
``about``, channel contents as ``variableMeasured``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fairimage.model.curation.checks import LICENSES
from fairimage.model.curation.rembi import Rembi, TermRef
from fairimage.model.study import Image, Study
from fairimage.model.viewing.correlative import CorrelativeSet

CONTEXT = {"@vocab": "https://schema.org/", "xsd": "http://www.w3.org/2001/XMLSchema#"}
OBO = "http://purl.obolibrary.org/obo/"
EDAM = "http://edamontology.org/"
TERM_SETS = {
    "FBbi": OBO + "fbbi.owl",
    "NCBITaxon": OBO + "ncbitaxon.owl",
    "EDAM": EDAM + "EDAM-bioimaging.owl",
}


@dataclass(frozen=True)
class Links:
    """Where things are on this node: ``base`` (``https://host/``) and the PID resolver under it."""

    base: str

    def pid(self, identifier: str) -> str:
        return f"{self.base.rstrip('/')}/pid/{identifier}"

    def zarr(self, image_id: str) -> str:
        return f"{self.base.rstrip('/')}/zarr/{image_id}.ome.zarr"

    def page(self, path: str) -> str:
        return f"{self.base.rstrip('/')}{path}"


def term_iri(curie: str) -> str:
    """The IRI of a CURIE: OBO's ``{prefix}_{local}`` form, EDAM's own namespace."""
    prefix, _, local = curie.partition(":")
    return f"{EDAM}{local}" if prefix == "EDAM" else f"{OBO}{prefix}_{local}"


def defined_term(ref: TermRef) -> dict[str, Any]:
    if not ref.id:
        return {"@type": "DefinedTerm", "name": ref.label}
    prefix = ref.id.partition(":")[0]
    return {
        "@type": "DefinedTerm",
        "@id": term_iri(ref.id),
        "name": ref.label,
        "termCode": ref.id,
        "inDefinedTermSet": TERM_SETS.get(prefix, ""),
    }


def dataset(
    study: Study,
    rembi: Rembi,
    images: list[Image],
    links: Links,
    version: int | None = None,
    correlative: Sequence[CorrelativeSet] = (),
) -> dict[str, Any]:
    """The study as a schema.org Dataset; ``images`` are those the caller may read (a restricted study's
    record is public, its images are not), ``correlative`` its correlative sets."""
    info = rembi.study
    methods = [method for component in rembi.study_components for method in component.imaging_methods]
    organisms = [b.organism for b in rembi.biosamples if b.organism is not None and b.organism.id]
    channels = [c for specimen in rembi.specimens for c in specimen.channels]
    document: dict[str, Any] = {
        "@context": CONTEXT,
        "@type": "Dataset",
        "@id": links.pid(study.id),
        "identifier": links.pid(study.id),
        "url": links.page(f"/studies/{study.id}"),
        "name": info.title or study.name,
        "description": info.description or study.description or f"Images of the study {study.name}.",
        "dateCreated": study.created_at.isoformat(),
        "includedInDataCatalog": {"@type": "DataCatalog", "name": "fairimage", "url": links.base},
        "isAccessibleForFree": study.policy == "public",
    }
    if version is not None:
        document["version"] = str(version)
    if info.license and info.license in LICENSES:
        document["license"] = LICENSES[info.license]
    if info.keywords:
        document["keywords"] = list(info.keywords)
    creators = [_person(person) for person in info.authors if person.name]
    if creators:
        document["creator"] = creators
    if methods:
        document["measurementTechnique"] = _unique([defined_term(method) for method in methods])
    about = [{"@type": "Taxon", "@id": term_iri(o.id or ""), "name": o.label} for o in organisms]
    about += [defined_term(topic) for topic in info.topics]
    if about:
        document["about"] = _unique(about)
    if channels:
        document["variableMeasured"] = [_channel(channel) for channel in channels]
    if info.publications:
        document["citation"] = [
            {
                "@type": "ScholarlyArticle",
                "name": p.title,
                **({"sameAs": f"https://doi.org/{p.doi}"} if p.doi else {}),
            }
            for p in info.publications
        ]
    if images:
        document["hasPart"] = [
            image_object(image, links, methods=None, part_of=None) for image in images[:100]
        ]
        document["distribution"] = [
            {
                "@type": "DataDownload",
                "name": image.name,
                "encodingFormat": "OME-Zarr 0.5",
                "contentUrl": links.zarr(image.id),
            }
            for image in images[:100]
        ]
    if correlative:
        document.setdefault("hasPart", []).extend(correlative_collection(c, links.pid) for c in correlative)
    return document


def correlative_collection(found: CorrelativeSet, image_ref: Callable[[str], str]) -> dict[str, Any]:
    """A correlative set as a schema.org Collection of its images (the reference first), each member's
    affine into the reference's space as OME-NGFF coordinateTransformations (a JSON PropertyValue);
    ``image_ref`` names an image as the document refers to it."""
    return {
        "@type": "Collection",
        "@id": f"#correlative-{found.id}",
        "identifier": found.id,
        "name": found.name,
        "description": found.description
        or f"{', '.join(m.modality for m in found.members)} registered into the {found.reference_modality} "
        f"image {found.reference_name}",
        "hasPart": [{"@id": image_ref(found.reference_image_id)}]
        + [{"@id": image_ref(member.image_id)} for member in found.members],
        "additionalProperty": [
            {
                "@type": "PropertyValue",
                "propertyID": "coordinateTransformations",
                "name": f"{member.modality} {member.image_name} -> {found.reference_modality} "
                f"{found.reference_name} ({found.unit or 'pixel units'})",
                "value": json.dumps(found.coordinate_transformations(member)),
                **({"description": f"fitted to {member.landmarks} landmarks, RMS residual "
                    f"{member.residual:.3g} reference pixels"} if member.residual is not None else {}),
            }
            for member in found.members
        ],
    }  # fmt: skip


def image_object(
    image: Image, links: Links, methods: list[TermRef] | None = None, part_of: str | None = None
) -> dict[str, Any]:
    """An image as a schema.org ImageObject (standalone with ``part_of``, else nested in its Dataset)."""
    sizes = dict(zip(image.axis_names, image.shape, strict=True))
    document: dict[str, Any] = {
        "@type": "ImageObject",
        "@id": links.pid(image.id),
        "identifier": links.pid(image.id),
        "name": image.name,
        "contentUrl": links.zarr(image.id),
        "encodingFormat": "OME-Zarr 0.5",
        "thumbnailUrl": links.page(f"/api/images/{image.id}/thumbnail"),
        "width": {"@type": "QuantitativeValue", "value": sizes.get("x", 1), "unitText": "pixel"},
        "height": {"@type": "QuantitativeValue", "value": sizes.get("y", 1), "unitText": "pixel"},
        "contentSize": f"{image.stored_bytes} B",
        "dateCreated": image.created_at.isoformat(),
    }
    if methods:
        document["measurementTechnique"] = _unique([defined_term(method) for method in methods])
    document.update(source_type(image, links))
    if part_of is not None:
        document["@context"] = CONTEXT
        document["isPartOf"] = {"@type": "Dataset", "@id": part_of}
    return document


def source_type(image: Image, links: Links) -> dict[str, Any]:
    """How an image came to be (schema.org's digitalSourceType, the IPTC codes): acquired by an instrument,
    or made by a trained model (AI-generated: the model as its creator, the images it was made from)."""
    if image.generated is None:
        return {"digitalSourceType": "https://schema.org/DigitalCaptureDigitalSource"}
    made: dict[str, Any] = {
        "digitalSourceType": "https://schema.org/TrainedAlgorithmicMediaDigitalSource",
        "creator": {"@type": "SoftwareApplication", "name": image.generated.by},
        "description": image.generated.statement,
    }
    if image.generated.from_images:
        made["isBasedOn"] = [{"@id": links.pid(source)} for source in image.generated.from_images]
    return made


def _person(person: Any) -> dict[str, Any]:
    found: dict[str, Any] = {"@type": "Person", "name": person.name}
    if person.orcid:
        found["@id"] = f"https://orcid.org/{person.orcid}"
    if person.affiliation:
        found["affiliation"] = {"@type": "Organization", "name": person.affiliation}
    return found


def _channel(channel: Any) -> dict[str, Any]:
    found: dict[str, Any] = {"@type": "PropertyValue", "name": channel.name or "channel"}
    if channel.biological_entity:
        found["description"] = channel.biological_entity
    if channel.content is not None and channel.content.id:
        found["propertyID"] = term_iri(channel.content.id)
        found["measurementTechnique"] = defined_term(channel.content)
    return found


def _unique(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    found = []
    for item in items:
        key = item.get("@id") or item.get("name") or ""
        if key not in seen:
            seen.add(key)
            found.append(item)
    return found
