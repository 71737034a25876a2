"""Search index queries: full-text matching (FTS5 on SQLite, tsvector on PostgreSQL) and facet counts,
restricted to what a caller may read. No rules here; the service decides what goes in."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, func, literal_column, select, text
from sqlalchemy.orm import Session

from fairimage.catalog.tables import ImageRow, SearchDocumentRow, SearchFacetRow, StudyRow
from fairimage.model.search import SearchDocument

_WORD = re.compile(r"\w+", re.UNICODE)


def replace_documents(
    session: Session, image_ids: Sequence[str], documents: Iterable[SearchDocument]
) -> None:
    """Replace the index entries of ``image_ids`` with ``documents``."""
    if image_ids:
        session.execute(delete(SearchFacetRow).where(SearchFacetRow.image_id.in_(image_ids)))
        session.execute(delete(SearchDocumentRow).where(SearchDocumentRow.image_id.in_(image_ids)))
    for document in documents:
        session.add(
            SearchDocumentRow(image_id=document.image_id, study_id=document.study_id, body=document.text)
        )
        session.add_all(
            SearchFacetRow(image_id=document.image_id, facet=f.facet, value=f.value[:255], direct=f.direct)
            for f in document.facets
        )
    session.flush()


def words(query: str) -> list[str]:
    return [word.lower() for word in _WORD.findall(query)][:32]


def matching(session: Session, query: str) -> Select[Any] | None:
    """(image_id, rank) of the documents matching every word of ``query`` (the last word as a prefix, for
    search-as-you-type); None when the query has no words."""
    terms = words(query)
    if not terms:
        return None
    if session.get_bind().dialect.name == "postgresql":
        tsquery = " & ".join(f"{term}:*" if i == len(terms) - 1 else term for i, term in enumerate(terms))
        vector: ColumnElement[Any] = literal_column("search_documents.tsv")
        condition = vector.op("@@")(func.to_tsquery("english", tsquery))
        rank = -func.ts_rank(vector, func.to_tsquery("english", tsquery))
        return select(SearchDocumentRow.image_id, rank.label("rank")).where(condition)
    fts = " ".join(f'"{term}"*' if i == len(terms) - 1 else f'"{term}"' for i, term in enumerate(terms))
    rank_column: ColumnElement[Any] = literal_column("bm25(search_fts)")
    return (
        select(literal_column("search_documents.image_id").label("image_id"), rank_column.label("rank"))
        .select_from(text("search_fts JOIN search_documents ON search_documents.rowid = search_fts.rowid"))
        .where(text("search_fts MATCH :fts").bindparams(fts=fts))
    )


def filtered_images(visible: ColumnElement[bool], filters: dict[str, list[str]]) -> Select[Any]:
    """The ids of images the caller may read that have, for every facet filtered, one of its values (an
    ancestor's value admits its descendants, whose rows carry it with direct false)."""
    query = select(ImageRow.id).join(StudyRow, StudyRow.id == ImageRow.study_id).where(visible)
    for facet, values in sorted(filters.items()):
        query = query.where(
            select(SearchFacetRow.image_id)
            .where(
                SearchFacetRow.image_id == ImageRow.id,
                SearchFacetRow.facet == facet,
                SearchFacetRow.value.in_(values),
            )
            .exists()
        )
    return query


def search_page(
    session: Session,
    query: str,
    visible: ColumnElement[bool],
    filters: dict[str, list[str]],
    limit: int,
    offset: int,
) -> tuple[list[tuple[str, float]], int, dict[str, list[tuple[str, int]]]]:
    """A page of (image_id, rank) best first, the total, and per facet its values with counts, over the
    images the caller may read that match."""
    admitted = filtered_images(visible, filters).subquery()
    matches = matching(session, query)
    if matches is None:
        ranked = select(admitted.c.id.label("image_id"), literal_column("0.0").label("rank"))
    else:
        found = matches.subquery()
        ranked = select(found.c.image_id, found.c.rank).join(admitted, admitted.c.id == found.c.image_id)
    hits = ranked.subquery()
    total = int(session.scalar(select(func.count()).select_from(hits)) or 0)
    page = [
        (image_id, float(rank))
        for image_id, rank in session.execute(
            select(hits.c.image_id, hits.c.rank)
            .order_by(hits.c.rank, hits.c.image_id)
            .limit(limit)
            .offset(offset)
        )
    ]
    counts: dict[str, list[tuple[str, int]]] = {}
    rows = session.execute(
        select(SearchFacetRow.facet, SearchFacetRow.value, func.count())
        .where(SearchFacetRow.direct.is_(True), SearchFacetRow.image_id.in_(select(hits.c.image_id)))
        .group_by(SearchFacetRow.facet, SearchFacetRow.value)
        .order_by(func.count().desc(), SearchFacetRow.value)
    )
    for facet, value, count in rows:
        counts.setdefault(facet, []).append((value, int(count)))
    return page, total, counts
