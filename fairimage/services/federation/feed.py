"""This node's change feed: the studies that changed since a cursor, each as other nodes may see it now
(public metadata and search groups; a restricted study's title and access conditions only, if the node
publishes them; named as gone, by a digest of its PID, otherwise), in signed pages. The audit log is the
journal: every change to a study writes a ``study.*`` entry, so the cursor is an entry's number;
embargoes that ended are added by time, as they end without an entry."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fairimage.catalog import federation as catalog
from fairimage.catalog import queries
from fairimage.catalog.tables import ImageRow, StudyRow, StudyVersionRow
from fairimage.model.curation.rembi import Rembi
from fairimage.model.discovery.jsonld import Links
from fairimage.model.errors import InvalidInputError
from fairimage.model.federation.feed import (
    MAX_PAGE,
    Change,
    Conditions,
    FeedPage,
    GroupRecord,
    StudyRecord,
    pid_digest,
)
from fairimage.model.governance.duo import DataUse
from fairimage.model.governance.policy import ANONYMOUS
from fairimage.services.federation import identity
from fairimage.services.governance import access
from fairimage.services.repository import Repository


def parse_cursor(cursor: str) -> tuple[int, datetime]:
    """``SEQ.SECONDS`` (an audit entry's number and when embargoes were last looked at); "" = the start."""
    if not cursor:
        return 0, datetime.fromtimestamp(0, UTC)
    seq, dot, seconds = cursor.partition(".")
    if not (seq.isdigit() and dot and seconds.isdigit()):
        raise InvalidInputError(
            f"after={cursor!r}: give a cursor this feed returned, or nothing to start over"
        )
    return int(seq), datetime.fromtimestamp(int(seconds), UTC)


def page(repository: Repository, base_url: str, after: str = "", limit: int = 100) -> tuple[bytes, str]:
    """A page of changes after the cursor ``after`` as JSON, and its signature by this node's key."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInputError(f"limit={limit}: give 1 to {MAX_PAGE}")
    seq, since = parse_cursor(after)
    now = datetime.now(UTC)
    links = Links(base_url)
    with repository.reading() as session:
        studies, last, more = catalog.changed_studies(session, seq, limit)
        looked = since
        if not more:  # at the end of the log: add the studies whose embargo ended meanwhile
            studies += [s for s in catalog.embargoes_ended(session, since, now) if s not in studies]
            looked = now
        found = {study_id: _change(repository, session, links, study_id) for study_id in studies}
    changes = [change for change in found.values() if change is not None]
    gone = [pid_digest(links.pid(study_id)) for study_id, change in found.items() if change is None]
    settings = repository.settings
    feed = FeedPage(
        node=identity.node_name(settings),
        after=after,
        cursor=f"{last}.{int(looked.timestamp())}",
        more=more,
        changes=changes,
        gone=gone,
    )
    body = feed.model_dump_json().encode()
    return body, identity.sign(settings, body)


def _change(repository: Repository, session: Session, links: Links, study_id: str) -> Change | None:
    """The study as peers may see it now, or None: not published (any more)."""
    pid = links.pid(study_id)
    row = session.get(StudyRow, study_id)
    now = datetime.now(UTC)
    if row is None or not access.may_discover_study(ANONYMOUS, row):
        return None
    number, stamp = _latest_version(session, study_id)
    rembi = Rembi.model_validate(row.rembi) if row.rembi else Rembi()
    title = rembi.study.title or row.name
    url = links.page(f"/studies/{study_id}")
    if not access.may_read_study(ANONYMOUS, row):
        if not repository.settings.publish_restricted:
            return None
        record = StudyRecord(access="restricted", title=title, url=url, conditions=_conditions(row))
        return Change(id=study_id, pid=pid, stamp=stamp or now, study=record)
    images = session.scalar(select(func.count()).where(ImageRow.study_id == study_id)) or 0
    record = StudyRecord(
        access="public",
        title=title,
        url=url,
        description=rembi.study.description or row.description,
        keywords=list(rembi.study.keywords),
        authors=[person.name for person in rembi.study.authors if person.name],
        license=rembi.study.license or "",
        version=number,
        images=int(images),
    )
    groups = [
        GroupRecord(text=group.text, images=group.images, facets=list(group.facets))
        for group in catalog.study_groups(session, study_id)
    ]
    return Change(id=study_id, pid=pid, stamp=stamp or now, study=record, groups=groups)


def _latest_version(session: Session, study_id: str) -> tuple[int | None, datetime | None]:
    found = session.execute(
        select(StudyVersionRow.number, StudyVersionRow.created_at)
        .where(StudyVersionRow.study_id == study_id)
        .order_by(StudyVersionRow.number.desc())
        .limit(1)
    ).first()
    if found is None:
        return None, None
    return int(found[0]), queries.aware(found[1])


def _conditions(row: StudyRow) -> Conditions:
    use = DataUse.model_validate(row.data_use) if row.data_use else None
    codes = [use.permission, *use.modifiers] if use is not None else []
    return Conditions(policy=row.policy, data_use=codes)
