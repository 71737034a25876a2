"""The provenance of an image as W3C PROV-O in JSON-LD: the stored OME-Zarr image (an entity) was derived
from its original file (an entity) by an ingest run (an activity) that a person started with fairimage (a
software agent) following a plan (the conversion parameters).

Pure: the caller passes what the catalog knows. The JSON-LD context is inline, so a processor needs no
network to expand it (PROV-O, https://www.w3.org/TR/prov-o/; schema.org for names, sizes and checksums).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from fairimage.model.study import Generated

CONTEXT = {
    "prov": "http://www.w3.org/ns/prov#",
    "schema": "https://schema.org/",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}


@dataclass(frozen=True)
class SourceFile:
    id: str
    name: str
    format: str
    size: int
    sha256: str


@dataclass(frozen=True)
class IngestActivity:
    id: str
    actor: str
    started_at: datetime
    ended_at: datetime | None
    software: dict[str, str]
    parameters: dict[str, Any]


@dataclass(frozen=True)
class ImageFacts:
    """What the catalog knows of one image and how it was made (``run`` is None for images ingested
    before runs were recorded)."""

    id: str
    name: str
    study_id: str
    created_at: datetime
    manifest_sha256: str
    stored_bytes: int
    source: SourceFile
    run: IngestActivity | None
    generated: Generated | None = None  # a model made the original file: AI-generated


def image_provenance(facts: ImageFacts, pid: str) -> dict[str, Any]:
    """The PROV JSON-LD document of one image; ``pid`` is the base of the node's PIDs
    (``https://host/pid/``), so entities get resolvable identifiers."""
    image: dict[str, Any] = {
        "@id": pid + facts.id,
        "@type": ["prov:Entity", "schema:ImageObject"],
        "schema:name": facts.name,
        "schema:encodingFormat": "OME-Zarr 0.5",
        "schema:contentSize": facts.stored_bytes,
        # The sha256 of the image's manifest, which lists the size and sha256 of every stored object.
        "schema:sha256": facts.manifest_sha256,
        "schema:isPartOf": {"@id": pid + facts.study_id},
        "prov:generatedAtTime": _time(facts.created_at),
        "prov:wasDerivedFrom": {"@id": pid + facts.source.id},
    }
    source = {
        "@id": pid + facts.source.id,
        "@type": ["prov:Entity", "schema:MediaObject"],
        "schema:name": facts.source.name,
        "schema:encodingFormat": facts.source.format,
        "schema:contentSize": facts.source.size,
        "schema:sha256": facts.source.sha256,
    }
    graph = [image, source]
    if facts.run is not None:
        graph += _run(facts.run, image, source)
    if facts.generated is not None:
        graph += _inference(facts.generated, image, source, pid)
    return {"@context": CONTEXT, "@graph": graph}


def _inference(
    generated: Generated, image: dict[str, Any], source: dict[str, Any], pid: str
) -> list[dict[str, Any]]:
    """A model made the original file from the input images: an activity of a software agent (the model,
    by its PID where it is registered here), which the image is attributed to as well."""
    model_id = (
        pid + generated.model if generated.model else f"urn:fairimage:model:{quote(generated.by, safe='')}"
    )
    activity_id = f"{source['@id']}/inference"
    inputs = [{"@id": pid + image_id} for image_id in generated.from_images]
    source["prov:wasGeneratedBy"] = {"@id": activity_id}
    image["prov:wasAttributedTo"] = [*_as_list(image.get("prov:wasAttributedTo")), {"@id": model_id}]
    if inputs:
        image["prov:wasDerivedFrom"] = [*_as_list(image["prov:wasDerivedFrom"]), *inputs]
    activity: dict[str, Any] = {
        "@id": activity_id,
        "@type": "prov:Activity",
        "rdfs:label": f"inference: {generated.statement}",
        "prov:wasAssociatedWith": {"@id": model_id},
        **({"prov:used": inputs} if inputs else {}),
    }
    if generated.parameters:  # what the model ran with
        activity["schema:additionalProperty"] = [
            {"@type": "schema:PropertyValue", "schema:name": key, "schema:value": value}
            for key, value in sorted(generated.parameters.items())
        ]
    model = {
        "@id": model_id,
        "@type": ["prov:SoftwareAgent", "schema:SoftwareApplication"],
        "schema:name": generated.by,
    }
    return [activity, model]


def _as_list(value: Any) -> list[Any]:
    return [] if value is None else value if isinstance(value, list) else [value]


def _run(run: IngestActivity, image: dict[str, Any], source: dict[str, Any]) -> list[dict[str, Any]]:
    activity_id = f"urn:fairimage:{run.id}"
    person_id = f"urn:fairimage:agent:{quote(run.actor, safe='')}"
    version = run.software.get("fairimage", "unknown")
    software_id = f"urn:fairimage:software:fairimage/{version}"
    plan_id = f"{activity_id}/plan"
    image["prov:wasGeneratedBy"] = {"@id": activity_id}
    image["prov:wasAttributedTo"] = {"@id": person_id}
    activity: dict[str, Any] = {
        "@id": activity_id,
        "@type": "prov:Activity",
        "rdfs:label": "fairimage ingest: convert to OME-Zarr, checksum, publish",
        "prov:startedAtTime": _time(run.started_at),
        "prov:used": {"@id": source["@id"]},
        "prov:wasAssociatedWith": [{"@id": person_id}, {"@id": software_id}],
        "prov:qualifiedAssociation": {
            "@type": "prov:Association",
            "prov:agent": {"@id": software_id},
            "prov:hadPlan": {"@id": plan_id},
        },
    }
    if run.ended_at is not None:
        activity["prov:endedAtTime"] = _time(run.ended_at)
    person = {"@id": person_id, "@type": "prov:Person", "rdfs:label": run.actor}
    software = {
        "@id": software_id,
        "@type": ["prov:SoftwareAgent", "schema:SoftwareApplication"],
        "schema:name": "fairimage",
        "schema:softwareVersion": version,
        "schema:softwareRequirements": [
            f"{name} {number}" for name, number in sorted(run.software.items()) if name != "fairimage"
        ],
        "prov:actedOnBehalfOf": {"@id": person_id},
    }
    plan = {
        "@id": plan_id,
        "@type": ["prov:Plan", "prov:Entity"],
        "rdfs:label": "conversion parameters",
        "schema:additionalProperty": [
            {"@type": "schema:PropertyValue", "schema:name": name, "schema:value": value}
            for name, value in _flatten("", run.parameters)
        ],
    }
    return [activity, person, software, plan]


def _flatten(prefix: str, values: dict[str, Any]) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for name, value in sorted(values.items()):
        if isinstance(value, dict):
            found += _flatten(f"{prefix}{name}.", value)
        elif value is not None:
            found.append((prefix + name, value))
    return found


def _time(moment: datetime) -> dict[str, str]:
    return {"@value": moment.isoformat(), "@type": "xsd:dateTime"}
