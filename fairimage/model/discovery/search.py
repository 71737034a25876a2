"""What the search index holds for one image, built from its study's REMBI metadata and the image itself.

Pure. Ontology terms enter the text with their synonyms and every ancestor's label, so that a search for
"fluorescence microscopy" finds images acquired by confocal microscopy, and "Mammalia" finds mice. Cell
types (CL) and anatomy (UBERON) enter with what they are part of as well, across the two: an astrocyte is
a neural cell, part of the nervous system, so "cells in the nervous system" finds it (the query's "in"
and "the" are dropped: ``query_words``). Facet values are term ids; each term's ancestors (in its own
ontology) are stored too (not counted), so a filter on a broad term admits its narrower ones.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from fairimage.model.curation.ontology import Ontology, broader
from fairimage.model.curation.rembi import Rembi, StudyComponent, TermRef

FACETS = (
    "organism",
    "imaging_method",
    "fluorophore",
    "cell_type",  # CL
    "organism_part",  # UBERON
    "study",
    "dimensionality",
    "dtype",
    "license",
    "channel",
    "tag",
    "compound",  # what the platemap says was put in a plate's well
    "control",  # positive, negative or neutral control wells
    "origin",  # acquired, or ai-generated (made by a model)
)
ACQUIRED, AI_GENERATED = "acquired", "ai-generated"
# English function words a query may hold ("cells in the nervous system"): every word of a query must
# match, and these say nothing about an image (PostgreSQL's english configuration drops them as well).
STOP_WORDS = frozenset(
    {"a", "an", "and", "are", "as", "at", "by", "for", "from", "in", "into", "is", "of", "on", "or", "that"}
    | {"the", "their", "these", "this", "those", "to", "with", "within"}
)


@dataclass(frozen=True)
class FacetValue:
    facet: str
    value: str
    direct: bool = True  # False for an ancestor of the term the metadata names (filters only, not counted)


@dataclass(frozen=True)
class ImageFacts:
    """The stored image, as far as search is concerned."""

    id: str
    name: str
    file_name: str
    format: str
    axes: str  # "tczyx"
    shape: tuple[int, ...]
    dtype: str
    channels: tuple[str, ...]
    acquisition: tuple[str, ...] = ()  # what its file says of its acquisition (modality, instrument, ...)
    compound: str | None = None  # a plate field's well, as its platemap says: the compound or treatment,
    control: str | None = None  # and its control type
    plate: str | None = None  # the plate's name and the well ("Screen01 B03")
    generated_by: str | None = None  # the model that made it: AI-generated


@dataclass(frozen=True)
class SearchDocument:
    """One image in the index. ``shared`` is the text its study and component give it (with its channels
    and format), the same for many images, so the index keeps it once per group of images; ``text`` is
    what only this image says (its names, its own annotations). An image matches a query when every word
    is in one or the other."""

    image_id: str
    study_id: str
    text: str
    facets: tuple[FacetValue, ...] = field(default_factory=tuple)
    shared: str = ""


def dimensionality(axes: str, shape: Iterable[int]) -> str:
    """ "2D", "3D", "2D+t", "3D+t" from the axes that have more than one sample."""
    sizes = dict(zip(axes, shape, strict=True))
    spatial = sum(1 for axis in "zyx" if axis in sizes and (axis != "z" or sizes[axis] > 1))
    timed = sizes.get("t", 1) > 1
    return f"{max(spatial, 1)}D" + ("+t" if timed else "")


def components_of(rembi: Rembi, file_name: str) -> list[StudyComponent]:
    """The study components an image belongs to: those whose ``files`` patterns match its original file
    name, or that name no files (they cover every image)."""
    matched = [
        c for c in rembi.study_components if c.files and any(fnmatch.fnmatch(file_name, p) for p in c.files)
    ]
    return matched or [c for c in rembi.study_components if not c.files]


def build_document(
    study_id: str,
    study_name: str,
    rembi: Rembi,
    image: ImageFacts,
    vocabularies: dict[str, Ontology],
    study_annotations: Iterable[tuple[str, str, str]] = (),
    image_annotations: Iterable[tuple[str, str, str]] = (),
) -> SearchDocument:
    """The index entry of one image; annotations (of its study and its own) are (kind, key, value)."""
    own: list[str] = [image.name, image.file_name]
    words: list[str] = [study_name, image.format, *image.channels, *image.acquisition]
    facets: list[FacetValue] = [
        FacetValue("study", study_id),
        FacetValue("dimensionality", dimensionality(image.axes, image.shape)),
        FacetValue("dtype", image.dtype),
        *(FacetValue("channel", name.lower()) for name in image.channels if name),
    ]
    if image.compound:
        facets.append(FacetValue("compound", image.compound.lower()))
        words.append(image.compound)
    if image.control:
        facets.append(FacetValue("control", image.control))
        words += [image.control, "control"]
    if image.plate:
        own.append(image.plate)
    facets.append(FacetValue("origin", AI_GENERATED if image.generated_by else ACQUIRED))
    if image.generated_by:
        own += [AI_GENERATED, "generated", image.generated_by]
    for target, notes in ((words, study_annotations), (own, image_annotations)):
        for kind, key, value in notes:
            target += [value] if kind == "tag" else [key, value]
            if kind == "tag":
                facets.append(FacetValue("tag", value.lower()))
    study = rembi.study
    words += [study.title or "", study.description or "", study.study_type or "", *study.keywords]
    words += [person.name or "" for person in study.authors]
    if study.license:
        facets.append(FacetValue("license", study.license))
    fbbi, taxa, edam = vocabularies["fbbi"], vocabularies["ncbitaxon"], vocabularies["edam"]
    # EDAM-bioimaging topics and analysis operations, with their broader terms ("image segmentation"
    # finds a study whose analysis was a watershed segmentation).
    for ref in [*study.topics, *(op for analysis in rembi.analysed_data for op in analysis.operations)]:
        words += _term_words(edam, ref, [], "edam")
    words += [analysis.type or "" for analysis in rembi.analysed_data]
    words += [analysis.method or "" for analysis in rembi.analysed_data]
    for component in components_of(rembi, image.file_name):
        words += [component.name or "", component.description or "", component.image_type or ""]
        for method in component.imaging_methods:
            words += _term_words(fbbi, method, facets, "imaging_method")
        biosample = next((b for b in rembi.biosamples if b.id and b.id == component.biosample), None)
        if biosample is not None:
            words += [biosample.biological_entity or "", biosample.description or ""]
            words += [
                *biosample.intrinsic_variables,
                *biosample.extrinsic_variables,
                *biosample.experimental_variables,
            ]
            if biosample.organism is not None:
                words += _term_words(taxa, biosample.organism, facets, "organism")
            for cell_type in biosample.cell_types:
                words += _term_words(vocabularies["cl"], cell_type, facets, "cell_type", vocabularies)
            for part in biosample.organism_parts:
                words += _term_words(vocabularies["uberon"], part, facets, "organism_part", vocabularies)
        specimen = next((s for s in rembi.specimens if s.id and s.id == component.specimen), None)
        if specimen is not None:
            words += [specimen.preparation_method or "", specimen.signal_contrast_mechanism or ""]
            for term in specimen.preparation_terms:
                words += _term_words(fbbi, term, [], "preparation")
            for channel in specimen.channels:
                words += [channel.name or "", channel.biological_entity or ""]
                if channel.content is not None:
                    words += _term_words(fbbi, channel.content, facets, "fluorophore")
        acquisition = next(
            (a for a in rembi.image_acquisitions if a.id and a.id == component.acquisition), None
        )
        if acquisition is not None:
            words += [acquisition.instrument or "", acquisition.objective or "", acquisition.detector or ""]
    return SearchDocument(
        image.id, study_id, _joined(own), tuple(_unique_facets(facets)), shared=_joined(words)
    )


def _joined(words: Iterable[str]) -> str:
    return " ".join(_unique(word.strip() for word in words if word and word.strip()))


def _term_words(
    bundle: Ontology,
    ref: TermRef,
    facets: list[FacetValue],
    facet: str,
    linked: dict[str, Ontology] | None = None,
) -> list[str]:
    """A term's label, synonyms and its ancestors' labels; its id (direct) and its ancestors' ids as facet
    values. With ``linked`` (the bundles), ancestors are taken by ``part_of`` too, across bundles."""
    term = bundle.term(ref.id) if ref.id else None
    if term is None:
        return [ref.label or ""]
    ancestors = broader(term.id, linked) if linked is not None else bundle.ancestors(term.id)
    facets.append(FacetValue(facet, term.id))
    own = [ancestor for ancestor in ancestors if bundle.term(ancestor.id) is not None]
    facets.extend(FacetValue(facet, ancestor.id, direct=False) for ancestor in own)
    return [term.label, *term.synonyms, *(ancestor.label for ancestor in ancestors)]


def query_words(query: str) -> str:
    """The words of a search that carry meaning: function words dropped, unless nothing else is left."""
    words = query.split()
    kept = [word for word in words if word.strip(".,;:!?\"'()").lower() not in STOP_WORDS]
    return " ".join(kept) if kept else query


def _unique(words: Iterable[str]) -> Iterator[str]:
    seen: set[str] = set()
    for word in words:
        if word.lower() not in seen:
            seen.add(word.lower())
            yield word


def _unique_facets(values: list[FacetValue]) -> Iterator[FacetValue]:
    """One row per facet and value; a direct mention wins over an ancestor's."""
    best: dict[tuple[str, str], FacetValue] = {}
    for value in values:
        key = (value.facet, value.value)
        if key not in best or (value.direct and not best[key].direct):
            best[key] = value
    yield from best.values()
