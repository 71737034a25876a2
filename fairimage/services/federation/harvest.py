"""Harvesting peers' change feeds: page after page, each checked against the peer's pinned key and kept in
one transaction together with the cursor it leads to, so a harvest killed or cut off half-way resumes
where it stopped, a page is never half kept, and running it again changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from fairimage.catalog import federation as catalog
from fairimage.catalog.tables import HarvestedStudyRow, PeerRow
from fairimage.model.errors import FairimageError, ProviderError
from fairimage.model.federation.feed import FEED, Change, FeedPage, pid_digest
from fairimage.model.governance.policy import Principal, Scope
from fairimage.services.federation import peers
from fairimage.services.governance import access, audit
from fairimage.services.repository import Repository

PAGE = 200


@dataclass(frozen=True)
class HarvestOutcome:
    peer: str
    pages: int
    kept: int  # studies added or replaced (each counted once)
    dropped: int  # studies the peer no longer publishes
    cursor: str
    error: str = ""


def harvest(
    repository: Repository,
    principal: Principal,
    name: str | None = None,
    on_page: Callable[[str, int], None] | None = None,
) -> list[HarvestOutcome]:
    """Harvest every peer (or the one named) from where the last harvest stopped; one peer's failure is
    recorded on it and in its outcome, and does not stop the others."""
    access.require(principal, Scope.ADMIN)
    if name is not None:
        names = [peers.pinned(repository, name).name]
    else:
        with repository.reading() as session:
            names = list(session.scalars(select(PeerRow.name).order_by(PeerRow.name)))
    return [_harvest_peer(repository, principal, peer, on_page) for peer in names]


def _harvest_peer(
    repository: Repository, principal: Principal, name: str, on_page: Callable[[str, int], None] | None
) -> HarvestOutcome:
    row = peers.pinned(repository, name)
    pages = dropped = 0
    kept: set[str] = set()
    cursor = row.cursor
    try:
        peers.check_key(row, peers.describe(row.url))
        while True:
            feed = _fetch_page(row, cursor)
            dropped += _keep(repository, row, feed)
            kept.update(change.pid for change in feed.changes)
            pages, cursor = pages + 1, feed.cursor
            if on_page is not None:
                on_page(name, len(feed.changes))
            if not feed.more:
                break
    except FairimageError as exc:
        _note_failure(repository, name, exc.message)
        return HarvestOutcome(name, pages, len(kept), dropped, cursor, exc.message)
    if kept or dropped:
        with repository.transaction() as session:
            audit.record(
                session,
                principal.name,
                "peer.harvest",
                f"peer:{name}",
                origin=principal.origin,
                kept=len(kept),
                dropped=dropped,
                cursor=cursor,
            )
    return HarvestOutcome(name, pages, len(kept), dropped, cursor)


def _fetch_page(row: PeerRow, cursor: str) -> FeedPage:
    response = peers.fetch(row.url + FEED, params={"after": cursor, "limit": str(PAGE)})
    peers.verify(response, row.public_key, row.name)
    feed = peers.parse(response, FeedPage, "a change feed page")
    if feed.after != cursor:
        raise ProviderError(f"{response.url}: the page answers after={feed.after!r}, not {cursor!r}")
    if feed.more and feed.cursor == cursor:
        raise ProviderError(
            f"{response.url}: the page says more follow but its cursor does not move ({cursor!r}); "
            "harvesting stopped rather than ask for the same page again"
        )
    prefix = row.url + "/pid/"
    for change in feed.changes:
        if change.pid != prefix + change.id:
            raise ProviderError(
                f"{response.url}: {change.pid!r} is not an identifier of {row.url} (it should be "
                f"{prefix + change.id}); a node publishes its own records only, nothing of the page was kept"
            )
    return feed


def _keep(repository: Repository, row: PeerRow, feed: FeedPage) -> int:
    """Apply a page and move the cursor, in one transaction; how many studies it dropped."""
    now = datetime.now(UTC)
    with repository.transaction() as session:
        for change in feed.changes:
            catalog.keep_harvested(session, _study(row.name, change, now), _groups(change))
        dropped = catalog.drop_gone(session, row.name, feed.gone)
        peer = session.get(PeerRow, row.name)
        if peer is None:
            raise ProviderError(f"peer {row.name} was removed during the harvest; nothing more was kept")
        peer.cursor, peer.harvested_at, peer.last_error = feed.cursor, now, ""
    return dropped


def _study(peer: str, change: Change, now: datetime) -> HarvestedStudyRow:
    study = change.study
    return HarvestedStudyRow(
        peer=peer,
        pid=change.pid,
        pid_sha256=pid_digest(change.pid),
        origin_id=change.id,
        access=study.access,
        title=study.title,
        images=study.images if study.access == "public" else 0,
        record=study.model_dump(mode="json"),
        stamp=change.stamp,
        harvested_at=now,
    )


def _groups(change: Change) -> list[catalog.Group]:
    """What search matches a harvested study by: its node's groups; a restricted study (or one with no
    images yet) by its title alone."""
    study = change.study
    if study.access != "public" or not change.groups:
        return [catalog.Group(study.title, 0, ())]
    return [catalog.Group(group.text, group.images, tuple(group.facets)) for group in change.groups]


def _note_failure(repository: Repository, name: str, message: str) -> None:
    with repository.transaction() as session:
        peer = session.get(PeerRow, name)
        if peer is not None:
            peer.last_error = message[:2000]
