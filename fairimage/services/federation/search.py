"""Federated search: the studies that match, here and at the peers, as one list. This node's own index,
the records harvested from peers and, when asked, the peers themselves queried live in parallel, each
within a timeout: a peer that is slow or down is reported and answered for by its harvested records, and
never fails the query or holds it past the timeout. Hits are merged by PID (one per study, whichever node
answered first: here, live, harvested) and facet counts are summed."""

from __future__ import annotations

import json
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import select

from fairimage.catalog import federation as catalog
from fairimage.catalog import search as index
from fairimage.catalog.tables import HarvestedStudyRow, StudyRow
from fairimage.model.curation.rembi import Rembi
from fairimage.model.discovery.jsonld import Links
from fairimage.model.discovery.search import FACETS, query_words
from fairimage.model.errors import InvalidInputError
from fairimage.model.governance.policy import Principal
from fairimage.services.discovery import search as local_search
from fairimage.services.discovery.search import FacetCount
from fairimage.services.federation import identity
from fairimage.services.repository import Repository

MAX_STUDIES = 200
SEARCH_PATH = "/api/search"
MAX_ANSWER = 16 << 20  # bytes of a peer's search answer read at most


@dataclass(frozen=True)
class StudyHit:
    pid: str
    node: str  # the node that holds it
    title: str
    images: int  # how many of its images match (0 for a restricted study: its node shows none)
    access: str  # "public" or "restricted" at its node ("readable" here for this node's own)
    url: str  # its page at its node
    source: str  # "local", "live" or "harvested"


@dataclass(frozen=True)
class PeerStatus:
    name: str
    status: str  # "live", "harvested" (not asked live), "timeout", "down" or "error"
    ms: int
    detail: str = ""


@dataclass(frozen=True)
class FederatedResults:
    query: str
    filters: dict[str, list[str]]
    total: int
    studies: list[StudyHit]
    facets: dict[str, list[FacetCount]] = field(default_factory=dict)
    peers: list[PeerStatus] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "query": self.query,
            "filters": self.filters,
            "total": self.total,
            "studies": [hit.__dict__ for hit in self.studies],
            "facets": {name: [count.__dict__ for count in counts] for name, counts in self.facets.items()},
            "peers": [peer.__dict__ for peer in self.peers],
        }


@dataclass
class _Tally:
    """Hits by PID, in the order they came, and facet counts summed."""

    hits: dict[str, StudyHit] = field(default_factory=dict)
    counts: dict[tuple[str, str], int] = field(default_factory=dict)

    def add(self, hit: StudyHit) -> bool:
        if hit.pid in self.hits:
            return False
        self.hits[hit.pid] = hit
        return True

    def count(self, facet: str, value: str, images: int) -> None:
        if facet != "study":  # studies are the hits themselves
            self.counts[(facet, value)] = self.counts.get((facet, value), 0) + images


def federated_search(
    repository: Repository,
    principal: Principal,
    base_url: str,
    query: str = "",
    filters: dict[str, list[str]] | None = None,
    live: bool = False,
    limit: int = 50,
    here: local_search.SearchResults | None = None,
) -> FederatedResults:
    """Studies matching every word and filter, on this node and its peers; see the module's docstring.
    ``here`` is this node's own search for the same words and filters, if the caller has made it already
    (its facet counts are all that is used)."""
    if not 1 <= limit <= MAX_STUDIES:
        raise InvalidInputError(f"limit: give 1 to {MAX_STUDIES}")
    settings = repository.settings
    tally = _Tally()
    if here is None or "study" in here.facets_left_off:  # every matching study here, not the first few
        here = local_search.search(
            repository, principal, query, filters or {}, 1, 0, facet_values=local_search.MAX_FACET_VALUES
        )
    with repository.reading() as session:
        local = [count.value for count in here.facets.get("study", [])]
        studies = {row.id: row for row in session.scalars(select(StudyRow).where(StudyRow.id.in_(local)))}
        known = catalog.peer_addresses(session)
    _add_local(tally, here, base_url, identity.node_name(settings), studies)
    statuses: list[PeerStatus] = []
    answered: list[str] = []
    if live and known:
        client = repository.http_client()
        for status, answer in _ask_live(client, known, query, here.filters, settings.peer_timeout):
            statuses.append(status)
            if answer is not None:
                _add_live(tally, answer, _harvested_titles(repository, answer))
                answered.append(status.name)
    else:
        statuses = [PeerStatus(name, "harvested", 0) for name, _ in known]
    with repository.reading() as session:
        terms = index.words(query_words(query))
        matches, counts = catalog.search_harvested(session, terms, here.filters, answered)
    for match in matches:
        study = match.study
        record = study.record
        hit = StudyHit(
            study.pid, study.peer, study.title, match.images, study.access, record["url"], "harvested"
        )
        tally.add(hit)
    for (facet, value), images in counts.items():
        tally.count(facet, value, images)
    return _results(query, here.filters, tally, statuses, limit)


def _add_local(
    tally: _Tally, here: local_search.SearchResults, base_url: str, node: str, studies: dict[str, StudyRow]
) -> None:
    """This node's studies that match; a mirror under its origin's PID (so it stands for it)."""
    links = Links(base_url)
    for count in here.facets.get("study", []):
        row = studies.get(count.value)
        url = links.page(f"/studies/{count.value}")
        pid = row.mirror_of if row is not None and row.mirror_of else links.pid(count.value)
        tally.add(StudyHit(pid, node, _title(row, count.label), count.count, "readable", url, "local"))
    for facet, counts in here.facets.items():
        for count in counts:
            tally.count(facet, count.value, count.count)


def _ask_live(
    client: httpx.Client, known: list[Any], query: str, filters: dict[str, list[str]], timeout: float
) -> list[tuple[PeerStatus, tuple[str, str, dict[str, Any]] | None]]:
    """Every peer's own search, in parallel; those not done within ``timeout`` are reported so."""
    pairs: list[tuple[str, str | int | float | bool | None]] = [
        ("q", query),
        ("limit", "1"),
        ("facet_values", local_search.MAX_FACET_VALUES),  # its studies are its study facet's values
    ]
    pairs += [(facet, value) for facet, values in sorted(filters.items()) for value in values]
    params = httpx.QueryParams(pairs)
    started = time.monotonic()
    pool = ThreadPoolExecutor(max_workers=min(16, len(known)), thread_name_prefix="peer-search")
    futures: dict[Future[dict[str, Any]], tuple[str, str]] = {
        pool.submit(_peer_search, client, url, params, started + timeout): (name, url) for name, url in known
    }
    done, _ = wait(futures, timeout=timeout)
    pool.shutdown(wait=False, cancel_futures=True)
    elapsed = int((time.monotonic() - started) * 1000)
    answers: list[tuple[PeerStatus, tuple[str, str, dict[str, Any]] | None]] = []
    for future, (name, url) in futures.items():
        if future not in done:
            answers.append((PeerStatus(name, "timeout", elapsed, f"no answer within {timeout:g} s"), None))
            continue
        error = future.exception()
        if error is not None:
            kind = "timeout" if isinstance(error, httpx.TimeoutException) else "down"
            if isinstance(error, (ValueError, KeyError, TypeError)):
                kind = "error"
            answers.append((PeerStatus(name, kind, elapsed, type(error).__name__), None))
            continue
        answer = future.result()
        answers.append((PeerStatus(name, "live", int(answer.pop("_ms"))), (name, url, answer)))
    return answers


def _peer_search(
    client: httpx.Client, url: str, params: httpx.QueryParams, deadline: float
) -> dict[str, Any]:
    """A peer's own search answer, read by ``deadline`` at the latest: a peer that trickles its answer is
    cut off then, so its thread ends with the query rather than holding a socket after it."""
    started = time.monotonic()
    body = bytearray()
    with client.stream(
        "GET", url + SEARCH_PATH, params=params, timeout=max(deadline - started, 0.01)
    ) as response:
        response.raise_for_status()
        for block in response.iter_bytes():
            body += block
            if time.monotonic() > deadline or len(body) > MAX_ANSWER:
                raise httpx.ReadTimeout("the peer's answer did not come in time", request=response.request)
    answer: dict[str, Any] = json.loads(body)
    if not isinstance(answer.get("facets"), dict):
        raise ValueError("not a search answer")
    answer["_ms"] = (time.monotonic() - started) * 1000
    return answer


def _title(row: StudyRow | None, name: str) -> str:
    if row is None or not row.rembi:
        return name
    return Rembi.model_validate(row.rembi).study.title or name


def _harvested_titles(repository: Repository, answer: tuple[str, str, dict[str, Any]]) -> dict[str, str]:
    """The harvested titles of the studies a peer's live answer names (its search names them by name)."""
    links = Links(answer[1])
    pids = [links.pid(str(count["value"])) for count in answer[2]["facets"].get("study", [])]
    if not pids:
        return {}
    with repository.reading() as session:
        found = session.execute(
            select(HarvestedStudyRow.pid, HarvestedStudyRow.title).where(HarvestedStudyRow.pid.in_(pids))
        )
        return {pid: title for pid, title in found}


def _add_live(tally: _Tally, answer: tuple[str, str, dict[str, Any]], titles: dict[str, str]) -> None:
    name, url, found = answer
    links = Links(url)
    for facet, counts in found["facets"].items():
        for count in counts:
            value, images = str(count["value"]), int(count["count"])
            if facet == "study":
                page, pid = links.page(f"/studies/{value}"), links.pid(value)
                title = titles.get(pid, str(count["label"]))
                tally.add(StudyHit(pid, name, title, images, "public", page, "live"))
            else:
                tally.count(facet, value, images)


def _results(
    query: str,
    filters: dict[str, list[str]],
    tally: _Tally,
    statuses: list[PeerStatus],
    limit: int,
) -> FederatedResults:
    hits = sorted(tally.hits.values(), key=lambda hit: (-hit.images, hit.title.lower(), hit.pid))
    facets: dict[str, list[FacetCount]] = {}
    ranked = sorted(tally.counts.items(), key=lambda item: (-item[1], item[0][1]))
    for (facet, value), count in ranked:
        if facet in FACETS:
            facets.setdefault(facet, []).append(
                FacetCount(value, local_search.label(facet, value, {}), count)
            )
    total = sum(hit.images for hit in hits)
    return FederatedResults(query, filters, total, hits[:limit], facets, statuses)
