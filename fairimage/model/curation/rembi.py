"""REMBI (Recommended Metadata for Biological Images, Sarkans et al. 2021) as fairimage records it: the
sections Study, Study Component, Biosample, Specimen, Image Acquisition, Image Data, Image Correlation and
Analysed Data, with each attribute's level (required, recommended, optional).

The models accept partial metadata (a study is curated step by step); ``model.curation`` checks values
against the ontologies and says what is missing. Image Data is mostly what the files say (formats,
dimensions, pixel sizes, channels), so fairimage fills it in from the stored images; a submitter adds only
what files cannot tell (image type, processing, contrast inversion).

Levels follow REMBI's guidance as fairimage reads it: what the paper's Study, Component, Biosample,
Specimen and Acquisition modules ask for first is required; attributes it marks as useful where they apply
are recommended; the rest optional.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Level = Literal["required", "recommended", "optional"]


class _Section(BaseModel):
    # Unknown keys are an error (a typo would otherwise vanish), and values are trimmed.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class TermRef(_Section):
    """An ontology term: its CURIE (or IRI) and label. In a study file a plain string is enough: a CURIE,
    an IRI or the term's exact label; curation resolves it and stores both."""

    id: str | None = None
    label: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            looks_like_id = text.startswith("http") or (":" in text and " " not in text)
            return {"id": text} if looks_like_id else {"label": text}
        return value

    def text(self) -> str:
        return self.id or self.label or ""


class Person(_Section):
    name: str | None = None
    orcid: str | None = None
    affiliation: str | None = None
    email: str | None = None
    role: str | None = None


class Publication(_Section):
    title: str | None = None
    authors: str | None = None
    year: int | None = None
    doi: str | None = None
    pubmed_id: str | None = None


class Study(_Section):
    title: str | None = None
    description: str | None = None
    authors: list[Person] = Field(default_factory=list)
    license: str | None = None
    keywords: list[str] = Field(default_factory=list)
    study_type: str | None = None
    funding: list[str] = Field(default_factory=list)
    publications: list[Publication] = Field(default_factory=list)
    acknowledgements: str | None = None
    topics: list[TermRef] = Field(default_factory=list)  # EDAM-bioimaging topics, e.g. light-sheet microscopy


class StudyComponent(_Section):
    name: str | None = None
    description: str | None = None
    imaging_methods: list[TermRef] = Field(default_factory=list)
    biosample: str | None = None  # the id of a biosample below
    specimen: str | None = None  # the id of a specimen
    acquisition: str | None = None  # the id of an image acquisition
    files: list[str] = Field(default_factory=list)  # original file names (globs); empty: every image
    image_type: str | None = None  # Image Data: primary image, segmentation, ...
    image_processing: str | None = None  # Image Data: how processed images were made
    contrast_inversion: bool | None = None  # Image Data: do bright features mean high signal?


class Biosample(_Section):
    id: str | None = None
    organism: TermRef | None = None
    biological_entity: str | None = None
    # REMBI's biological entity, as terms: what BioSamples and EFO call "cell type" and "organism part".
    cell_types: list[TermRef] = Field(default_factory=list)  # CL, e.g. CL:0000127 (astrocyte)
    organism_parts: list[TermRef] = Field(default_factory=list)  # UBERON, e.g. UBERON:0002107 (liver)
    description: str | None = None
    intrinsic_variables: list[str] = Field(default_factory=list)
    extrinsic_variables: list[str] = Field(default_factory=list)
    experimental_variables: list[str] = Field(default_factory=list)


class SpecimenChannel(_Section):
    name: str | None = None  # as the image names it, e.g. "DAPI"
    content: TermRef | None = None  # the fluorophore or stain (FBbi)
    biological_entity: str | None = None  # what it shows, e.g. "nuclei"


class Specimen(_Section):
    id: str | None = None
    preparation_method: str | None = None
    preparation_terms: list[TermRef] = Field(default_factory=list)  # FBbi sample preparation terms
    signal_contrast_mechanism: str | None = None
    channels: list[SpecimenChannel] = Field(default_factory=list)
    experimental_status: str | None = None  # control or test
    location_within_biosample: str | None = None


class ImageAcquisition(_Section):
    id: str | None = None
    instrument: str | None = None  # make, model, kind, configuration
    parameters: str | None = None  # settings that reproduce the images
    objective: str | None = None
    detector: str | None = None


class ImageCorrelation(_Section):
    spatial_temporal_alignment: str | None = None
    fiducials: str | None = None
    transformation_matrix: str | None = None
    related_images: str | None = None


class AnalysedData(_Section):
    type: str | None = None
    data_used: str | None = None
    method: str | None = None
    operations: list[TermRef] = Field(default_factory=list)  # EDAM-bioimaging operations, e.g. segmentation
    description: str | None = None


class Rembi(_Section):
    """A study's REMBI metadata."""

    schema_: str = Field(default="fairimage-rembi/1", alias="schema")
    study: Study = Field(default_factory=Study)
    study_components: list[StudyComponent] = Field(default_factory=list)
    biosamples: list[Biosample] = Field(default_factory=list)
    specimens: list[Specimen] = Field(default_factory=list)
    image_acquisitions: list[ImageAcquisition] = Field(default_factory=list)
    image_correlation: ImageCorrelation | None = None
    analysed_data: list[AnalysedData] = Field(default_factory=list)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def dump(self) -> dict[str, Any]:
        """As stored and exported: JSON types, unset fields left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=False)

    def for_blind_review(self) -> Rembi:
        """The metadata as a double-blind reviewer sees it: what could name the authors (people, their
        contacts and affiliations, publications' author lists, funders, acknowledgements) left out."""
        study = self.study.model_copy(
            update={
                "authors": [],
                "funding": [],
                "acknowledgements": None,
                "publications": [p.model_copy(update={"authors": None}) for p in self.study.publications],
            }
        )
        return self.model_copy(update={"study": study})


def blind_metadata(rembi: dict[str, Any] | None) -> dict[str, Any] | None:
    """A stored REMBI document (as versions snapshot it) as a double-blind reviewer sees it."""
    if not rembi:
        return rembi
    return Rembi.model_validate(rembi).for_blind_review().dump()


@dataclass(frozen=True)
class Attribute:
    """One REMBI attribute: where it is (``biosamples[].organism``), its level, and what to write."""

    path: str
    level: Level
    hint: str
    ontology: str | None = None  # the ontology its terms come from


ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute("study.title", "required", "the study's title, as it would be cited"),
    Attribute("study.description", "required", "what was studied and imaged, in a few sentences"),
    Attribute("study.authors", "required", "the people who made the data: name, ORCID, affiliation"),
    Attribute("study.authors[].orcid", "recommended", "each author's ORCID iD, e.g. 0000-0002-1825-0097"),
    Attribute("study.authors[].affiliation", "recommended", "each author's institution"),
    Attribute("study.license", "required", "an SPDX licence id, e.g. CC-BY-4.0 or CC0-1.0"),
    Attribute("study.keywords", "recommended", "words people search for: the biology and the method"),
    Attribute(
        "study.study_type", "recommended", "the kind of study, e.g. 'regulation of mitotic cell division'"
    ),
    Attribute("study.funding", "optional", "grants, e.g. 'Wellcome 212345/Z/18/Z'"),
    Attribute("study.publications", "optional", "papers about the data: title, DOI"),
    Attribute("study.topics", "optional", "EDAM-bioimaging topics, e.g. 'Light-sheet microscopy'", "edam"),
    Attribute("study_components", "required", "at least one component: an experiment and its images"),
    Attribute("study_components[].name", "required", "a short name for the experiment"),
    Attribute("study_components[].description", "required", "what the images of this component show"),
    Attribute(
        "study_components[].imaging_methods", "required", "FBbi terms, e.g. FBbi:00000251 (confocal)", "fbbi"
    ),
    Attribute("study_components[].biosample", "recommended", "the id of the biosample that was imaged"),
    Attribute("study_components[].specimen", "recommended", "the id of the specimen (how it was prepared)"),
    Attribute("study_components[].acquisition", "recommended", "the id of the image acquisition used"),
    Attribute("study_components[].files", "optional", "its images' original file names or globs; none: all"),
    Attribute("study_components[].image_type", "recommended", "primary image, segmentation, ..."),
    Attribute("study_components[].image_processing", "optional", "how processed images were made"),
    Attribute("biosamples", "required", "at least one biosample: what was imaged"),
    Attribute("biosamples[].id", "required", "a name the components refer to, e.g. hela"),
    Attribute("biosamples[].organism", "required", "an NCBITaxon term, e.g. NCBITaxon:9606", "ncbitaxon"),
    Attribute("biosamples[].biological_entity", "required", "e.g. 'HeLa cell', 'liver section'"),
    Attribute(
        "biosamples[].cell_types", "optional", "Cell Ontology terms, e.g. CL:0000127 (astrocyte)", "cl"
    ),
    Attribute(
        "biosamples[].organism_parts",
        "optional",
        "UBERON anatomy terms, e.g. UBERON:0002107 (liver)",
        "uberon",
    ),
    Attribute("biosamples[].description", "recommended", "the biosample in a sentence"),
    Attribute("biosamples[].intrinsic_variables", "recommended", "innate traits, e.g. a genetic alteration"),
    Attribute("biosamples[].extrinsic_variables", "optional", "what was added, e.g. a drug"),
    Attribute("biosamples[].experimental_variables", "optional", "what was varied on purpose, e.g. time"),
    Attribute("specimens", "required", "at least one specimen: how the biosample was prepared"),
    Attribute("specimens[].id", "required", "a name the components refer to"),
    Attribute("specimens[].preparation_method", "required", "enough for an expert to reproduce it"),
    Attribute("specimens[].preparation_terms", "recommended", "FBbi sample preparation terms", "fbbi"),
    Attribute("specimens[].signal_contrast_mechanism", "recommended", "e.g. fluorescent proteins, stains"),
    Attribute("specimens[].channels", "recommended", "per channel: name, content (FBbi), what it shows"),
    Attribute("specimens[].channels[].content", "optional", "the fluorophore or stain, e.g. DAPI", "fbbi"),
    Attribute("specimens[].experimental_status", "optional", "control or test"),
    Attribute("specimens[].location_within_biosample", "optional", "e.g. a well, a region"),
    Attribute("image_acquisitions", "required", "at least one acquisition: the instrument and settings"),
    Attribute("image_acquisitions[].id", "required", "a name the components refer to"),
    Attribute("image_acquisitions[].instrument", "required", "make, model and kind of the instrument"),
    Attribute("image_acquisitions[].parameters", "required", "settings that reproduce the images"),
    Attribute("image_acquisitions[].objective", "recommended", "e.g. 63x/1.4 NA oil"),
    Attribute("image_acquisitions[].detector", "optional", "e.g. sCMOS camera"),
    Attribute("image_correlation", "optional", "how images of several modalities relate"),
    Attribute("analysed_data", "optional", "results derived from the images: type, method"),
    Attribute(
        "analysed_data[].operations",
        "optional",
        "EDAM-bioimaging operations, e.g. 'Cell segmentation'",
        "edam",
    ),
)
SECTIONS = (
    "study",
    "study_components",
    "biosamples",
    "specimens",
    "image_acquisitions",
    "image_correlation",
    "analysed_data",
)
