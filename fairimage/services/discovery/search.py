"""One search service for the CLI, the API and the web page: full-text over metadata and annotations with
ranking, ontology-aware (a term's ancestors are indexed with it), and facets with counts, over the images
the caller may read. Images are indexed as they are published and again when their study's metadata
changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from fairimage import ontology
from fairimage.catalog import queries
from fairimage.catalog import search as index
from fairimage.catalog.tables import ImageRow, SearchDocumentRow, StudyRow, WellRow
from fairimage.model.curation.rembi import Rembi
from fairimage.model.discovery.search import FACETS, ImageFacts, build_document, query_words
from fairimage.model.errors import InvalidInputError
from fairimage.model.governance.policy import Principal
from fairimage.model.study import Image
from fairimage.services.discovery.images import to_image
from fairimage.services.governance import access
from fairimage.services.repository import Repository

MAX_LIMIT = 200
# Values listed per facet, the most frequent first (a facet's chosen values always among them): at millions
# of images the study facet alone has thousands of values, which no one reads and each would be named.
FACET_VALUES = 50
MAX_FACET_VALUES = 1000
# Facets whose values are ontology terms, and the ontology they come from.
TERM_FACETS = {
    "organism": "ncbitaxon",
    "imaging_method": "fbbi",
    "fluorophore": "fbbi",
    "cell_type": "cl",
    "organism_part": "uberon",
}


def index_images(session: Session, study: StudyRow, images: Sequence[ImageRow]) -> None:
    """(Re)index ``images`` of ``study`` in the caller's transaction."""
    rembi = Rembi.model_validate(study.rembi) if study.rembi else Rembi()
    vocabularies = ontology.vocabularies()
    annotations = queries.annotations_by_image(session, study.id)
    wells = queries.wells_of_images(session, images)
    documents = [
        build_document(
            study.id,
            study.name,
            rembi,
            _facts(image, wells.get(image.id)),
            vocabularies,
            annotations.get(None, []),
            annotations.get(image.id, []),
        )
        for image in images
    ]
    index.replace_documents(session, [image.id for image in images], documents)


def index_study(session: Session, study: StudyRow) -> None:
    """Reindex every image of a study (its metadata changed)."""
    index_images(session, study, queries.study_images(session, study.id))


def index_missing(repository: Repository) -> int:
    """Index images that have no search document (made before search existed); returns how many."""
    with repository.reading() as session:
        studies = set(
            session.scalars(
                select(ImageRow.study_id)
                .outerjoin(SearchDocumentRow, SearchDocumentRow.image_id == ImageRow.id)
                .where(SearchDocumentRow.image_id.is_(None))
                .distinct()
            )
        )
    count = 0
    for study_id in sorted(studies):
        with repository.transaction() as session:
            study = session.get(StudyRow, study_id)
            if study is not None:
                images = queries.study_images(session, study_id)
                index_images(session, study, images)
                count += len(images)
    return count


def _facts(image: ImageRow, well: tuple[str, WellRow] | None = None) -> ImageFacts:
    """What search knows of an image; ``well`` is a plate field's (plate name, well)."""
    plate, treatment = well if well else (None, None)
    return ImageFacts(
        compound=treatment.compound if treatment else None,
        control=treatment.control if treatment else None,
        plate=f"{plate} {image.well_row}{image.well_column}" if plate else None,
        id=image.id,
        name=image.name,
        file_name=image.original_file.name,
        format=image.original_file.format,
        axes="".join(axis["name"] for axis in image.axes),
        shape=tuple(image.shape),
        dtype=image.dtype,
        channels=tuple(channel.get("label", "") for channel in image.channels),
        acquisition=tuple(str(value) for value in (image.acquisition or {}).values()),
        generated_by=str(image.generated["by"]) if image.generated else None,
    )


@dataclass(frozen=True)
class FacetCount:
    value: str
    label: str
    count: int


@dataclass(frozen=True)
class Hit:
    image: Image
    rank: float


@dataclass(frozen=True)
class SearchResults:
    query: str
    filters: dict[str, list[str]]
    total: int
    hits: list[Hit]
    facets: dict[str, list[FacetCount]] = field(default_factory=dict)
    facets_left_off: dict[str, int] = field(default_factory=dict)  # values not listed, per facet

    def to_dict(self) -> dict[str, object]:
        """As ``--json`` gives it (the API adds each image's URLs)."""
        return {
            "query": self.query,
            "filters": self.filters,
            "total": self.total,
            "hits": [{**hit.image.model_dump(mode="json"), "rank": hit.rank} for hit in self.hits],
            "facets": {name: [count.__dict__ for count in counts] for name, counts in self.facets.items()},
            "facets_left_off": self.facets_left_off,
        }


def parse_filters(pairs: Sequence[str]) -> dict[str, list[str]]:
    """``["organism=mouse", "dtype=uint16"]`` -> ``{"organism": ["mouse"], "dtype": ["uint16"]}``."""
    filters: dict[str, list[str]] = {}
    for pair in pairs:
        facet, sep, value = pair.partition("=")
        if not sep or not value.strip():
            raise InvalidInputError(f"--facet {pair!r}: write FACET=VALUE, e.g. organism=NCBITaxon:9606")
        filters.setdefault(facet.strip(), []).append(value.strip())
    return filters


def search(
    repository: Repository,
    principal: Principal,
    query: str = "",
    filters: dict[str, list[str]] | None = None,
    limit: int = 20,
    offset: int = 0,
    facet_values: int = FACET_VALUES,
) -> SearchResults:
    """Images matching every word of ``query`` (function words such as "in" and "the" aside) and every
    facet filter, best first, with facet counts (the ``facet_values`` most frequent values of each, and
    the values filtered on); only what ``principal`` may read is searched or counted."""
    if not 1 <= limit <= MAX_LIMIT or offset < 0:
        raise InvalidInputError(f"limit: give 1 to {MAX_LIMIT}, and an offset of 0 or more")
    if not 1 <= facet_values <= MAX_FACET_VALUES:
        raise InvalidInputError(f"facet values: give 1 to {MAX_FACET_VALUES}")
    with repository.reading() as session:
        resolved = resolve_filters(session, filters or {})
        page, total, all_counts = index.search_page(
            session, query_words(query), access.searchable(principal), resolved, limit, offset
        )
        counts = {
            facet: _listed(values, facet_values, resolved.get(facet, []))
            for facet, values in all_counts.items()
        }
        rows = {row.id: row for row in _image_rows(session, [image_id for image_id, _ in page])}
        hits = [Hit(to_image(rows[image_id]), rank) for image_id, rank in page if image_id in rows]
        counted = [value for value, _ in counts.get("study", [])]
        named = session.execute(select(StudyRow.id, StudyRow.name).where(StudyRow.id.in_(counted)))
        names = {study_id: name for study_id, name in named}
    facets = {
        facet: [
            FacetCount(value, label(facet, value, names), count) for value, count in counts.get(facet, [])
        ]
        for facet in FACETS
    }
    left_off = {
        facet: len(all_counts[facet]) - len(listed)
        for facet, listed in counts.items()
        if len(listed) < len(all_counts[facet])
    }
    return SearchResults(query, resolved, total, hits, facets, left_off)


def _listed(values: list[tuple[str, int]], most: int, chosen: list[str]) -> list[tuple[str, int]]:
    """The ``most`` first of a facet's (value, count), most frequent first, and any chosen value after."""
    listed = values[:most]
    wanted = set(chosen) - {value for value, _ in listed}
    return listed + [pair for pair in values[most:] if pair[0] in wanted] if wanted else listed


def _image_rows(session: Session, ids: list[str]) -> Sequence[ImageRow]:
    if not ids:
        return []
    from sqlalchemy.orm import selectinload

    return session.scalars(
        select(ImageRow)
        .where(ImageRow.id.in_(ids))
        .options(selectinload(ImageRow.original_file), selectinload(ImageRow.study))
    ).all()


def resolve_filters(session: Session, filters: dict[str, list[str]]) -> dict[str, list[str]]:
    """Facet filters as the index stores them: terms as CURIEs (found by id, label or synonym), studies
    as ids (found by id or name)."""
    resolved: dict[str, list[str]] = {}
    for facet, values in filters.items():
        if facet not in FACETS:
            raise InvalidInputError(f"facet {facet!r}: use one of {', '.join(FACETS)}")
        for value in values:
            resolved.setdefault(facet, []).append(_resolve_value(session, facet, value))
    return resolved


def _resolve_value(session: Session, facet: str, value: str) -> str:
    if facet in TERM_FACETS:
        bundle = ontology.ontology(TERM_FACETS[facet])
        found = bundle.find(value)
        if found is None:
            options = ", ".join(f"{t.id} ({t.label})" for t in bundle.complete(value, 3)) or "none close"
            raise InvalidInputError(
                f"{facet}={value!r}: not a term of the bundled {bundle.name}; candidates: {options}"
            )
        return found.term.id
    if facet == "study":
        study = queries.study_by_id_or_name(session, value)
        return study.id if study is not None else value
    return value.lower() if facet in ("channel", "tag") else value


def label(facet: str, value: str, study_names: dict[str, str]) -> str:
    if facet in TERM_FACETS:
        term = ontology.ontology(TERM_FACETS[facet]).term(value)
        return term.label if term is not None else value
    if facet == "study":
        return study_names.get(value, value)
    return value
