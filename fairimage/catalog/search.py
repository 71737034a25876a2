"""Search index queries: full-text matching (FTS5 on SQLite, tsvector on PostgreSQL) and facet counts,
restricted to the studies a caller may read. No rules here; the service decides what goes in.

Facets are stored per signature: the set of facet values an image has, shared by every image with the
same set (usually all images of a study component). Filtering is a join on a few signatures, and counting
groups the matches by signature, then adds up each signature's values: exact counts without touching a
row per image and facet.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Float, Integer, Select, delete, func, literal_column, select, text
from sqlalchemy.orm import Session

from fairimage.catalog.tables import SearchDocumentRow, SearchSignatureRow, StudyRow
from fairimage.model.search import FacetValue, SearchDocument

_WORD = re.compile(r"\w+", re.UNICODE)
Documents = SearchDocumentRow


def signature(facets: Iterable[FacetValue]) -> str:
    """The signature of a set of facet values (order does not matter)."""
    canonical = "\n".join(sorted(f"{f.facet}\t{f.value}\t{int(f.direct)}" for f in facets))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def replace_documents(
    session: Session, image_ids: Sequence[str], documents: Iterable[SearchDocument]
) -> None:
    """Replace the index entries of ``image_ids`` with ``documents`` (signatures are kept: others may
    share them)."""
    if image_ids:
        session.execute(delete(SearchDocumentRow).where(SearchDocumentRow.image_id.in_(image_ids)))
    by_signature: dict[str, tuple[FacetValue, ...]] = {}
    rows = []
    for document in documents:
        key = signature(document.facets)
        by_signature.setdefault(key, document.facets)
        rows.append(
            SearchDocumentRow(
                image_id=document.image_id, study_id=document.study_id, signature=key, body=document.text
            )
        )
    known = set(
        session.scalars(
            select(SearchSignatureRow.signature).where(SearchSignatureRow.signature.in_(list(by_signature)))
        )
    )
    session.add_all(
        SearchSignatureRow(signature=key, facet=f.facet, value=f.value[:255], direct=f.direct)
        for key, facets in by_signature.items()
        if key not in known
        for f in facets
    )
    session.add_all(rows)
    session.flush()


def words(query: str) -> list[str]:
    return [word.lower() for word in _WORD.findall(query)][:32]


def _matches(session: Session, query: str) -> tuple[ColumnElement[bool], Any] | None:
    """How to restrict documents to those matching every word of ``query`` (the last as a prefix, for
    search-as-you-type), and a subquery or expression giving their rank (smaller is better)."""
    terms = words(query)
    if not terms:
        return None
    if session.get_bind().dialect.name == "postgresql":
        tsquery = func.to_tsquery(
            "english", " & ".join(f"{t}:*" if i == len(terms) - 1 else t for i, t in enumerate(terms))
        )
        vector: ColumnElement[Any] = literal_column("search_documents.tsv")
        return vector.op("@@")(tsquery), -func.ts_rank(vector, tsquery)
    fts = " ".join(f'"{t}"*' if i == len(terms) - 1 else f'"{t}"' for i, t in enumerate(terms))
    matched = (
        text(
            "SELECT rowid AS doc_rowid, bm25(search_fts) AS rank FROM search_fts WHERE search_fts MATCH :fts"
        )
        .bindparams(fts=fts)
        .columns(doc_rowid=Integer, rank=Float)
        .subquery("matched")
    )
    rowid: ColumnElement[Any] = literal_column("search_documents.rowid")
    return rowid == matched.c.doc_rowid, matched


def _base(
    session: Session, query: str, visible: ColumnElement[bool], filters: dict[str, list[str]], ranked: bool
) -> Select[Any]:
    """The matching documents of readable studies: image id, signature and (``ranked``) rank."""
    source: Any = Documents.__table__
    conditions = [visible]
    rank: ColumnElement[Any] = literal_column("0.0")
    match = _matches(session, query)
    if match is not None:
        condition, ranking = match
        if isinstance(ranking, ColumnElement):  # PostgreSQL: a condition on the tsvector column
            conditions.append(condition)
            rank = ranking
        else:  # SQLite: join the FTS5 matches
            source = source.join(ranking, condition)
            rank = ranking.c.rank
    columns: list[Any] = [Documents.image_id, Documents.signature]
    statement = (select(*columns, rank.label("rank")) if ranked else select(*columns)).select_from(
        source.join(StudyRow.__table__, StudyRow.id == Documents.study_id)
    )
    statement = statement.where(*conditions)
    for facet, values in sorted(filters.items()):
        signatures = select(SearchSignatureRow.signature).where(
            SearchSignatureRow.facet == facet, SearchSignatureRow.value.in_(values)
        )
        statement = statement.where(Documents.signature.in_(signatures))
    return statement


def search_page(
    session: Session,
    query: str,
    visible: ColumnElement[bool],
    filters: dict[str, list[str]],
    limit: int,
    offset: int,
) -> tuple[list[tuple[str, float]], int, dict[str, list[tuple[str, int]]]]:
    """A page of (image_id, rank) best first, the total, and per facet its values with counts, over the
    readable documents that match."""
    matched = _base(session, query, visible, filters, ranked=False).subquery()
    grouped = session.execute(select(matched.c.signature, func.count()).group_by(matched.c.signature))
    groups: dict[str, int] = {key: int(count) for key, count in grouped}
    total = sum(groups.values())
    counts: dict[str, dict[str, int]] = {}
    keys = list(groups)
    for start in range(0, len(keys), 5000):  # within every database's limit on bound parameters
        rows = session.execute(
            select(SearchSignatureRow.signature, SearchSignatureRow.facet, SearchSignatureRow.value).where(
                SearchSignatureRow.signature.in_(keys[start : start + 5000]),
                SearchSignatureRow.direct.is_(True),
            )
        )
        for key, facet, value in rows:
            values = counts.setdefault(facet, {})
            values[value] = values.get(value, 0) + groups[key]
    ordered = {
        facet: sorted(values.items(), key=lambda item: (-item[1], item[0]))
        for facet, values in counts.items()
    }
    if not total:
        return [], 0, ordered
    ranked = _base(session, query, visible, filters, ranked=True).subquery()
    page = [
        (image_id, float(rank))
        for image_id, rank in session.execute(
            select(ranked.c.image_id, ranked.c.rank)
            .order_by(ranked.c.rank, ranked.c.image_id)
            .limit(limit)
            .offset(offset)
        )
    ]
    return page, total, ordered
