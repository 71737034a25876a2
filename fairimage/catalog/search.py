"""Search index queries: full-text matching (FTS5 on SQLite, tsvector on PostgreSQL) and facet counts,
restricted to the studies a caller may read. No rules here; the service decides what goes in.

Images of one study that share their study's and component's text and their facet values form a *group*:
that text is indexed once per group, with the group's size, and each image keeps only its own words (its
names, its annotations). An image matches when every word of the query is in its group's text or in its
own. Most matches are whole groups, so counting and ranking touch groups, not images; images that match
partly through their own words are found through the image index, which holds few words.

Facets are stored per signature: the set of facet values an image has. Filtering is a join on a few
signatures, and counting adds up the sizes of the matching groups per signature, then each signature's
values.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    Select,
    and_,
    bindparam,
    delete,
    func,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session

from fairimage.catalog.tables import SearchDocumentRow, SearchGroupRow, SearchSignatureRow, StudyRow
from fairimage.model.discovery.search import FacetValue, SearchDocument

_T = TypeVar("_T")
_WORD = re.compile(r"\w+", re.UNICODE)
_CHUNK = 5000  # within every database's limit on bound parameters
Documents = SearchDocumentRow
Groups = SearchGroupRow


def signature(facets: Iterable[FacetValue]) -> str:
    """The signature of a set of facet values (order does not matter)."""
    canonical = "\n".join(sorted(f"{f.facet}\t{f.value}\t{int(f.direct)}" for f in facets))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def group_key(study_id: str, signature_key: str, shared: str) -> str:
    """The group of images of a study with the same shared text and facet signature."""
    return hashlib.sha256(f"{study_id}\n{signature_key}\n{shared}".encode()).hexdigest()[:32]


def replace_documents(
    session: Session, image_ids: Sequence[str], documents: Iterable[SearchDocument]
) -> None:
    """Replace the index entries of ``image_ids`` with ``documents``; the groups they leave or join are
    recounted (signatures are kept: others may share them)."""
    touched: set[str] = set()
    for start in range(0, len(image_ids), _CHUNK):
        chunk = list(image_ids[start : start + _CHUNK])
        touched.update(session.scalars(select(Documents.group_key).where(Documents.image_id.in_(chunk))))
        session.execute(delete(Documents).where(Documents.image_id.in_(chunk)))
    by_signature: dict[str, tuple[FacetValue, ...]] = {}
    groups: dict[str, SearchGroupRow] = {}
    rows = []
    for document in documents:
        facets_key = signature(document.facets)
        by_signature.setdefault(facets_key, document.facets)
        key = group_key(document.study_id, facets_key, document.shared)
        groups.setdefault(
            key,
            SearchGroupRow(
                group_key=key,
                study_id=document.study_id,
                signature=facets_key,
                body=document.shared,
                images=0,
            ),
        )
        rows.append(
            SearchDocumentRow(
                image_id=document.image_id,
                study_id=document.study_id,
                signature=facets_key,
                group_key=key,
                body=document.text,
            )
        )
    known_signatures = _existing(session, SearchSignatureRow.signature, list(by_signature))
    session.add_all(
        SearchSignatureRow(signature=key, facet=f.facet, value=f.value[:255], direct=f.direct)
        for key, facets in by_signature.items()
        if key not in known_signatures
        for f in facets
    )
    known_groups = _existing(session, Groups.group_key, list(groups))
    session.add_all(group for key, group in groups.items() if key not in known_groups)
    session.add_all(rows)
    session.flush()
    _recount(session, touched | set(groups))


def _existing(session: Session, column: Any, keys: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(keys), _CHUNK):
        found.update(session.scalars(select(column).where(column.in_(keys[start : start + _CHUNK]))))
    return found


def _recount(session: Session, keys: set[str]) -> None:
    """Each group's size from its documents; groups no image is in any more are dropped."""
    ordered = sorted(keys)
    for start in range(0, len(ordered), _CHUNK):
        chunk = ordered[start : start + _CHUNK]
        counted = session.execute(
            select(Documents.group_key, func.count())
            .where(Documents.group_key.in_(chunk))
            .group_by(Documents.group_key)
        )
        sizes = {key: int(size) for key, size in counted}
        empty = [key for key in chunk if key not in sizes]
        if empty:
            session.execute(delete(Groups).where(Groups.group_key.in_(empty)))
        for key, size in sizes.items():
            session.execute(update(Groups).where(Groups.group_key == key).values(images=size))
    session.flush()


def words(query: str) -> list[str]:
    return [word.lower() for word in _WORD.findall(query)][:32]


@dataclass(frozen=True)
class _Match:
    """How one dialect matches words: on groups (their shared text) and on documents (images' own)."""

    session: Session

    @property
    def postgres(self) -> bool:
        return self.session.get_bind().dialect.name == "postgresql"

    def groups(self, terms: list[str], name: str) -> tuple[ColumnElement[bool], ColumnElement[Any], Any]:
        """Groups whose text has every term (the last as a prefix): a condition, their rank (smaller is
        better), and on SQLite the FTS5 matches to join (None on PostgreSQL)."""
        if self.postgres:
            query = func.to_tsquery("english", bindparam(name, ts_query(terms)))
            vector: ColumnElement[Any] = literal_column("search_groups.tsv")
            return vector.op("@@")(query), -func.ts_rank(vector, query), None
        ranked = (
            text(
                "SELECT rowid AS group_rowid, bm25(search_group_fts) AS rank FROM search_group_fts "
                f"WHERE search_group_fts MATCH :{name}"
            )
            .bindparams(bindparam(name, fts_query(terms)))
            .columns(group_rowid=Integer, rank=Float)
            .subquery(name)
        )
        rowid: ColumnElement[Any] = literal_column("search_groups.rowid")
        return rowid == ranked.c.group_rowid, ranked.c.rank, ranked

    def group_keys(self, terms: list[str], name: str) -> Select[Any]:
        """The keys of the groups whose text has every term."""
        if self.postgres:
            query = func.to_tsquery("english", bindparam(name, ts_query(terms)))
            return select(Groups.group_key).where(literal_column("search_groups.tsv").op("@@")(query))
        rowids = text(f"SELECT rowid FROM search_group_fts WHERE search_group_fts MATCH :{name}").bindparams(
            bindparam(name, fts_query(terms))
        )
        return select(Groups.group_key).where(literal_column("search_groups.rowid").in_(rowids))

    def without_table_scan(self, run: Callable[[], _T]) -> _T:
        """``run()`` with PostgreSQL's sequential scans off: a LIMIT over a word search (a prefix above
        all, which it estimates at a fixed share of the rows, however few hold it) makes its planner read
        every image's row instead of the GIN index, 3-5 s at 10 million images for no match at all, where
        the index answers in 0.1 ms (docs/scaling.md). SQLite plans FTS5 matches by itself."""
        if not self.postgres:
            return run()
        self.session.execute(text("SET LOCAL enable_seqscan = off"))
        try:
            return run()
        finally:
            self.session.execute(text("RESET enable_seqscan"))

    def documents(self, terms: list[str], name: str, any_term: bool = False) -> ColumnElement[bool]:
        """Images whose own words have every term (or, with ``any_term``, one of them)."""
        if self.postgres:
            expression = ts_query(terms, "|" if any_term else "&")
            query = func.to_tsquery("english", bindparam(name, expression))
            return literal_column("search_documents.tsv").op("@@")(query)
        rowids = text(f"SELECT rowid FROM search_fts WHERE search_fts MATCH :{name}").bindparams(
            bindparam(name, fts_query(terms, " OR " if any_term else " "))
        )
        return literal_column("search_documents.rowid").in_(rowids)


def fts_query(terms: list[str], joiner: str = " ") -> str:
    """An FTS5 query: every term quoted, the last a prefix (search as you type)."""
    return joiner.join(f'"{t}"*' if i == len(terms) - 1 else f'"{t}"' for i, t in enumerate(terms))


def ts_query(terms: list[str], joiner: str = "&") -> str:
    return f" {joiner} ".join(f"{t}:*" if i == len(terms) - 1 else t for i, t in enumerate(terms))


def _filtered(column: Any, filters: dict[str, list[str]]) -> list[ColumnElement[bool]]:
    """Conditions on a signature column: one per facet, any of its values."""
    return [
        column.in_(
            select(SearchSignatureRow.signature).where(
                SearchSignatureRow.facet == facet, SearchSignatureRow.value.in_(values)
            )
        )
        for facet, values in sorted(filters.items())
    ]


@dataclass(frozen=True)
class _GroupHit:
    key: str
    signature: str
    images: int
    rank: float


def _group_query(
    session: Session, terms: list[str], visible: ColumnElement[bool], filters: dict[str, list[str]]
) -> Select[Any]:
    """Readable groups whose text has every term (all of them with no terms): key, signature, size, rank."""
    source: Any = Groups.__table__.join(StudyRow.__table__, StudyRow.id == Groups.study_id)
    conditions = [visible, *_filtered(Groups.signature, filters)]
    rank: ColumnElement[Any] = literal_column("0.0")
    if terms:
        condition, rank, matches = _Match(session).groups(terms, "all_words")
        if matches is None:
            conditions.append(condition)
        else:
            source = source.join(matches, condition)
    return (
        select(Groups.group_key, Groups.signature, Groups.images, rank.label("rank"))
        .select_from(source)
        .where(*conditions)
    )


def _matching_groups(session: Session, query: Select[Any]) -> list[_GroupHit]:
    """The groups of ``query``, best first."""
    rows = session.execute(query)
    hits = [_GroupHit(key, facets_key, int(size), float(score)) for key, facets_key, size, score in rows]
    return sorted(hits, key=lambda hit: (hit.rank, hit.key))


def _group_facet_counts(session: Session, query: Select[Any]) -> dict[tuple[str, str], int]:
    """Per (facet, value), how many images of the groups of ``query`` have it: summed in the database, so
    that many groups cost one aggregate rather than their signatures' rows."""
    matched = query.subquery("matched")
    rows = session.execute(
        select(SearchSignatureRow.facet, SearchSignatureRow.value, func.sum(matched.c.images))
        .select_from(matched.join(SearchSignatureRow, SearchSignatureRow.signature == matched.c.signature))
        .where(SearchSignatureRow.direct.is_(True))
        .group_by(SearchSignatureRow.facet, SearchSignatureRow.value)
    )
    return {(facet, value): int(count) for facet, value, count in rows}


def _partial_matches(
    session: Session, terms: list[str], visible: ColumnElement[bool], filters: dict[str, list[str]]
) -> list[tuple[str, str]]:
    """Readable images that match only with their own words: (image id, signature), by image id. Each term
    is in the image's group text or its own words, at least one in its own, and not all in its group's
    (those images are counted with their group)."""
    match = _Match(session)
    # Most queries name no image's own words: one look at the image index settles that, before any join.
    own = select(Documents.image_id).where(match.documents(terms, "own_any", any_term=True))
    candidates = match.without_table_scan(lambda: list(session.scalars(own.limit(_CHUNK + 1))))
    if not candidates:
        return []
    conditions = [
        visible,
        *_filtered(Documents.signature, filters),
        Documents.image_id.in_(candidates) if len(candidates) <= _CHUNK else Documents.image_id.in_(own),
        Documents.group_key.not_in(match.group_keys(terms, "group_all")),
    ]
    for index, term in enumerate(terms):
        last = index == len(terms) - 1
        one = [term] if not last else terms[index:]  # the last term stays a prefix
        conditions.append(
            or_(
                Documents.group_key.in_(match.group_keys(one, f"group_{index}")),
                match.documents(one, f"own_{index}"),
            )
        )
    rows = session.execute(
        select(Documents.image_id, Documents.signature)
        .select_from(Documents.__table__.join(StudyRow.__table__, StudyRow.id == Documents.study_id))
        .where(and_(*conditions))
        .order_by(Documents.image_id)
    )
    return [(image_id, facets_key) for image_id, facets_key in rows]


def search_page(
    session: Session,
    query: str,
    visible: ColumnElement[bool],
    filters: dict[str, list[str]],
    limit: int,
    offset: int,
) -> tuple[list[tuple[str, float]], int, dict[str, list[tuple[str, int]]]]:
    """A page of (image_id, rank) best first, the total, and per facet its values with counts, over the
    readable images that match. Whole groups come first, best ranked first, each in image id order; then
    the images that match through their own words."""
    terms = words(query)
    group_query = _group_query(session, terms, visible, filters)
    groups = _matching_groups(session, group_query)
    partial = _partial_matches(session, terms, visible, filters) if terms else []
    sizes: dict[str, int] = {}
    for _, facets_key in partial:
        sizes[facets_key] = sizes.get(facets_key, 0) + 1
    total = sum(group.images for group in groups) + len(partial)
    found = _group_facet_counts(session, group_query) if groups else {}
    for key, count in _facet_counts(session, sizes).items():
        found[key] = found.get(key, 0) + count
    counts: dict[str, list[tuple[str, int]]] = {}
    for (facet, value), count in sorted(found.items(), key=lambda item: (-item[1], item[0][1])):
        counts.setdefault(facet, []).append((value, count))
    page: list[tuple[str, float]] = []
    position = 0
    for group in groups:
        if len(page) >= limit:
            break
        if position + group.images <= offset:
            position += group.images
            continue
        skip = max(0, offset - position)
        ids = session.scalars(
            select(Documents.image_id)
            .where(Documents.group_key == group.key)
            .order_by(Documents.image_id)
            .limit(limit - len(page))
            .offset(skip)
        )
        page += [(image_id, group.rank) for image_id in ids]
        position += group.images
    start = max(0, offset - position)
    page += [(image_id, 0.0) for image_id, _ in partial[start : start + limit - len(page)]]
    return page, total, counts


def _facet_counts(session: Session, sizes: dict[str, int]) -> dict[tuple[str, str], int]:
    """Per (facet, value), how many images have it, given how many images have each signature."""
    counts: dict[tuple[str, str], int] = {}
    keys = list(sizes)
    for start in range(0, len(keys), _CHUNK):
        rows = session.execute(
            select(SearchSignatureRow.signature, SearchSignatureRow.facet, SearchSignatureRow.value).where(
                SearchSignatureRow.signature.in_(keys[start : start + _CHUNK]),
                SearchSignatureRow.direct.is_(True),
            )
        )
        for key, facet, value in rows:
            counts[(facet, value)] = counts.get((facet, value), 0) + sizes[key]
    return counts
