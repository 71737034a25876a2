"""Federation queries: what changed for the change feed (from the audit log, which records every change to
a study), and the records harvested from peers: replaced, dropped and searched (full text over their
groups, as the local index does, and facet counts summed over the matching groups)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, bindparam, delete, func, literal_column, select, text, true
from sqlalchemy.orm import Session

from fairimage.catalog.search import fts_query, ts_query
from fairimage.catalog.tables import (
    AuditRow,
    HarvestedFacetRow,
    HarvestedGroupRow,
    HarvestedStudyRow,
    PeerRow,
    SearchGroupRow,
    SearchSignatureRow,
    StudyRow,
)

STUDY_TARGET = "study:"


def peer_addresses(session: Session) -> list[tuple[str, str]]:
    """Every peer's (name, base URL), by name."""
    rows = session.execute(select(PeerRow.name, PeerRow.url).order_by(PeerRow.name))
    return [(name, url) for name, url in rows]


def changed_studies(session: Session, after: int, limit: int) -> tuple[list[str], int, bool]:
    """The studies whose audit entries after ``after`` record a change to them (``study.*`` actions), in
    the order of their latest change, leaving out those that change again after this page (they come
    then); the last entry read; and whether more entries follow."""
    rows = session.execute(
        select(AuditRow.seq, AuditRow.target)
        .where(
            AuditRow.seq > after,
            AuditRow.action.like("study.%"),
            AuditRow.target.like(STUDY_TARGET + "%"),
        )
        .order_by(AuditRow.seq)
        .limit(limit + 1)
    ).all()
    more = len(rows) > limit
    rows = rows[:limit]
    order: dict[str, int] = {}
    for seq, target in rows:
        order.pop(target[len(STUDY_TARGET) :], None)
        order[target[len(STUDY_TARGET) :]] = int(seq)
    last = int(rows[-1][0]) if rows else after
    if more:  # a study changed again later comes with that later change, once, not on every page
        targets = [STUDY_TARGET + study for study in order]
        later = session.scalars(
            select(AuditRow.target)
            .where(AuditRow.seq > last, AuditRow.action.like("study.%"), AuditRow.target.in_(targets))
            .distinct()
        )
        for target in later:
            order.pop(target[len(STUDY_TARGET) :], None)
    return list(order), last, more


def embargoes_ended(session: Session, since: datetime, until: datetime) -> list[str]:
    """Studies whose embargo ended after ``since`` and by ``until``: they became public with no entry."""
    return list(
        session.scalars(
            select(StudyRow.id).where(StudyRow.embargo_until > since, StudyRow.embargo_until <= until)
        )
    )


def last_seq(session: Session) -> int:
    return int(session.scalar(select(func.max(AuditRow.seq))) or 0)


@dataclass(frozen=True)
class Group:
    """A group of images as the feed publishes it: shared text, size, facet values (facet, value, direct)."""

    text: str
    images: int
    facets: tuple[tuple[str, str, bool], ...]


def study_groups(session: Session, study_id: str) -> list[Group]:
    """The local search index's groups of a study, with their facet values."""
    groups = session.execute(
        select(SearchGroupRow.signature, SearchGroupRow.body, SearchGroupRow.images)
        .where(SearchGroupRow.study_id == study_id)
        .order_by(SearchGroupRow.group_key)
    ).all()
    signatures = {signature for signature, _, _ in groups}
    facets: dict[str, list[tuple[str, str, bool]]] = {}
    for row in session.scalars(
        select(SearchSignatureRow).where(SearchSignatureRow.signature.in_(signatures))
    ):
        facets.setdefault(row.signature, []).append((row.facet, row.value, row.direct))
    return [Group(body, int(images), tuple(sorted(facets.get(key, [])))) for key, body, images in groups]


def drop_harvested(session: Session, pids: Iterable[str]) -> None:
    """Forget harvested studies (and their groups and facet values)."""
    ids = select(HarvestedStudyRow.id).where(HarvestedStudyRow.pid.in_(list(pids)))
    groups = select(HarvestedGroupRow.id).where(HarvestedGroupRow.study_id.in_(ids))
    session.execute(delete(HarvestedFacetRow).where(HarvestedFacetRow.group_id.in_(groups)))
    session.execute(delete(HarvestedGroupRow).where(HarvestedGroupRow.study_id.in_(ids)))
    session.execute(delete(HarvestedStudyRow).where(HarvestedStudyRow.pid.in_(list(pids))))


def drop_gone(session: Session, peer: str, digests: Sequence[str]) -> int:
    """Forget the studies of ``peer`` whose PIDs have these sha256 digests; how many there were."""
    pids = list(
        session.scalars(
            select(HarvestedStudyRow.pid).where(
                HarvestedStudyRow.peer == peer, HarvestedStudyRow.pid_sha256.in_(list(digests))
            )
        )
    )
    if pids:
        drop_harvested(session, pids)
    return len(pids)


def drop_peer_records(session: Session, peer: str) -> None:
    pids = list(session.scalars(select(HarvestedStudyRow.pid).where(HarvestedStudyRow.peer == peer)))
    for start in range(0, len(pids), 1000):
        drop_harvested(session, pids[start : start + 1000])


def keep_harvested(session: Session, study: HarvestedStudyRow, groups: Sequence[Group]) -> None:
    """Store a harvested study with its groups, replacing what was kept under its PID."""
    drop_harvested(session, [study.pid])
    session.add(study)
    session.flush()
    for group in groups:
        row = HarvestedGroupRow(study_id=study.id, body=group.text, images=group.images)
        session.add(row)
        session.flush()
        unique = {(facet, value[:255]): direct for facet, value, direct in group.facets}
        session.add_all(
            HarvestedFacetRow(group_id=row.id, facet=facet, value=value, direct=direct)
            for (facet, value), direct in unique.items()
        )


@dataclass(frozen=True)
class HarvestedMatch:
    study: HarvestedStudyRow
    images: int  # how many of its images match


def search_harvested(
    session: Session, terms: list[str], filters: dict[str, list[str]], skip_public_of: Sequence[str] = ()
) -> tuple[list[HarvestedMatch], dict[tuple[str, str], int]]:
    """Harvested studies with a group that has every term and every filter's facet value (most matching
    images first), and per (facet, value) how many matching images have it. The public records of the
    peers ``skip_public_of`` are left out (they answered live)."""
    conditions = [_full_text(session, terms), *_filters(filters)]
    if skip_public_of:
        conditions.append(
            HarvestedGroupRow.study_id.not_in(
                select(HarvestedStudyRow.id).where(
                    HarvestedStudyRow.peer.in_(list(skip_public_of)), HarvestedStudyRow.access == "public"
                )
            )
        )
    matched = select(HarvestedGroupRow.id, HarvestedGroupRow.study_id, HarvestedGroupRow.images).where(
        *conditions
    )
    groups = matched.subquery("matched")
    sizes = session.execute(
        select(groups.c.study_id, func.sum(groups.c.images)).group_by(groups.c.study_id)
    ).all()
    by_id = {int(study_id): int(images) for study_id, images in sizes}
    studies = session.scalars(select(HarvestedStudyRow).where(HarvestedStudyRow.id.in_(list(by_id)))).all()
    matches = sorted(
        (HarvestedMatch(study, by_id[study.id]) for study in studies),
        key=lambda match: (-match.images, match.study.title, match.study.pid),
    )
    counted = session.execute(
        select(HarvestedFacetRow.facet, HarvestedFacetRow.value, func.sum(groups.c.images))
        .select_from(groups.join(HarvestedFacetRow, HarvestedFacetRow.group_id == groups.c.id))
        .where(HarvestedFacetRow.direct.is_(True))
        .group_by(HarvestedFacetRow.facet, HarvestedFacetRow.value)
    )
    return matches, {(facet, value): int(count) for facet, value, count in counted}


def _full_text(session: Session, terms: list[str]) -> ColumnElement[bool]:
    if not terms:
        return true()
    if session.get_bind().dialect.name == "postgresql":
        query = func.to_tsquery("english", bindparam("harvested_words", ts_query(terms)))
        return literal_column("harvested_groups.tsv").op("@@")(query)
    rowids = text(
        "SELECT rowid FROM harvested_group_fts WHERE harvested_group_fts MATCH :harvested_words"
    ).bindparams(bindparam("harvested_words", fts_query(terms)))
    return HarvestedGroupRow.id.in_(rowids)


def _filters(filters: dict[str, list[str]]) -> list[ColumnElement[bool]]:
    return [
        HarvestedGroupRow.id.in_(
            select(HarvestedFacetRow.group_id).where(
                HarvestedFacetRow.facet == facet, HarvestedFacetRow.value.in_(values)
            )
        )
        for facet, values in sorted(filters.items())
    ]
