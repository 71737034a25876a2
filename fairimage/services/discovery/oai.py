"""The OAI-PMH 2.0 endpoint's logic: arguments checked as the protocol says, records of the studies the
caller may discover (harvesters are anonymous: public studies and the records of restricted ones), in
Dublin Core or DataCite, paged with resumption tokens."""

from __future__ import annotations

import base64
import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any

from sqlalchemy import func, select

from fairimage.catalog import queries
from fairimage.catalog.tables import ImageRow, StudyRow, StudyVersionRow
from fairimage.model.curation.checks import LICENSES
from fairimage.model.curation.rembi import Rembi
from fairimage.model.discovery import exports, oai
from fairimage.model.discovery.jsonld import Links
from fairimage.model.discovery.oai import OaiError, Record
from fairimage.model.governance.policy import Principal
from fairimage.model.study import Study
from fairimage.services.discovery.images import to_study
from fairimage.services.governance import access
from fairimage.services.repository import Repository

VERBS = {
    "Identify": (set(), set()),
    "ListMetadataFormats": (set(), {"identifier"}),
    "ListSets": (set(), {"resumptionToken"}),
    "ListIdentifiers": ({"metadataPrefix"}, {"from", "until", "set"}),
    "ListRecords": ({"metadataPrefix"}, {"from", "until", "set"}),
    "GetRecord": ({"identifier", "metadataPrefix"}, set()),
}


def handle(
    repository: Repository, principal: Principal, pairs: list[tuple[str, str]], base_url: str, host: str
) -> bytes:
    """The XML answer to one OAI-PMH request (``pairs``: its arguments, repeated ones included)."""
    args = dict(pairs)
    now = datetime.now(UTC)
    root, request = oai.envelope(base_url, args, now)
    try:
        _answer(repository, principal, root, pairs, args, base_url, host)
    except OaiError as failure:
        oai.error(root, request, failure)
    return oai.to_bytes(root)


def _answer(
    repository: Repository,
    principal: Principal,
    root: ET.Element,
    pairs: list[tuple[str, str]],
    args: dict[str, str],
    base_url: str,
    host: str,
) -> None:
    verb = args.get("verb")
    if verb not in VERBS or [key for key, _ in pairs].count("verb") != 1:
        raise OaiError("badVerb", f"{verb!r} is not an OAI-PMH verb; use one of {', '.join(VERBS)}")
    if len(pairs) != len(args):
        raise OaiError("badArgument", "an argument is repeated")
    given = set(args) - {"verb"}
    required, optional = VERBS[verb]
    exclusive = "resumptionToken" in given and verb in ("ListIdentifiers", "ListRecords")
    if exclusive and given != {"resumptionToken"}:
        raise OaiError("badArgument", "resumptionToken is an exclusive argument")
    if not exclusive and (required - given or given - required - optional):
        missing, extra = sorted(required - given), sorted(given - required - optional)
        raise OaiError(
            "badArgument", f"missing {missing}" if missing else f"not an argument of {verb}: {extra}"
        )
    settings = repository.settings
    if verb == "Identify":
        oai.identify(root, base_url, f"fairimage at {host}", _earliest(repository), settings.oai_admin_email)
    elif verb == "ListMetadataFormats":
        if "identifier" in args:
            _entries(repository, principal, host, only=_study_of(args["identifier"], host))
        oai.metadata_formats(root)
    elif verb == "ListSets":
        raise OaiError("noSetHierarchy", "this repository has no sets")
    elif verb == "GetRecord":
        prefix = _prefix(args["metadataPrefix"])
        (entry,) = _entries(repository, principal, host, only=_study_of(args["identifier"], host))
        node = ET.SubElement(root, f"{{{oai.OAI}}}GetRecord")
        oai.record_element(node, _record(entry, Links(base_url), host), prefix)
    else:
        _list(repository, principal, root, verb, args, base_url, host)


def _list(
    repository: Repository,
    principal: Principal,
    root: ET.Element,
    verb: str,
    args: dict[str, str],
    base_url: str,
    host: str,
) -> None:
    state: dict[str, Any]
    if "resumptionToken" in args:
        state = _decode(args["resumptionToken"])
    else:
        if "set" in args:
            raise OaiError("noSetHierarchy", "this repository has no sets")
        state = {
            "p": _prefix(args["metadataPrefix"]),
            "o": 0,
            "f": args.get("from"),
            "u": args.get("until"),
        }
    start, end = _bound(state.get("f"), False), _bound(state.get("u"), True)
    found = [
        entry
        for entry in _entries(repository, principal, host)
        if (start is None or entry.stamp >= start) and (end is None or entry.stamp <= end)
    ]
    if not found:
        raise OaiError("noRecordsMatch", "no records match these arguments")
    page = repository.settings.oai_page_size
    offset = int(state["o"])
    node = ET.SubElement(root, f"{{{oai.OAI}}}{verb}")
    links = Links(base_url)
    for entry in found[offset : offset + page]:  # only the page's records are built
        record = _record(entry, links, host)
        if verb == "ListRecords":
            oai.record_element(node, record, str(state["p"]))
        else:
            oai.header(node, record)
    if len(found) > page or offset:
        following = offset + page
        token = _encode({**state, "o": following}) if following < len(found) else None
        oai.resumption(node, token, len(found), offset)


def _prefix(prefix: str) -> str:
    if prefix not in oai.FORMATS:
        raise OaiError("cannotDisseminateFormat", f"{prefix!r}: the formats are {', '.join(oai.FORMATS)}")
    return prefix


def _study_of(identifier: str, host: str) -> str:
    scheme, _, rest = identifier.partition(f"oai:{host}:")
    if scheme or not rest:
        raise OaiError("idDoesNotExist", f"{identifier!r} is not an identifier of this repository")
    return rest


def _bound(text: str | None, end: bool) -> datetime | None:
    if text is None:
        return None
    try:
        if len(text) == 10:
            day = datetime.strptime(text, "%Y-%m-%d").date()
            return datetime.combine(day, time.max if end else time.min, tzinfo=UTC)
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise OaiError(
            "badArgument", f"{text!r}: write dates as YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ"
        ) from None


def _encode(state: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, sort_keys=True).encode()).decode().rstrip("=")


def _decode(token: str) -> dict[str, Any]:
    try:
        state = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if (
            not isinstance(state, dict)
            or state.get("p") not in oai.FORMATS
            or not isinstance(state.get("o"), int)
        ):
            raise ValueError(token)
        return state
    except ValueError:
        raise OaiError("badResumptionToken", "the resumption token is not one this repository gave") from None


def _earliest(repository: Repository) -> datetime:
    with repository.reading() as session:
        earliest = session.scalar(select(func.min(StudyRow.created_at)))
    return queries.aware(earliest) or datetime.now(UTC)


@dataclass(frozen=True)
class _Entry:
    """A study as the list verbs see it before its record is built: its record, metadata and datestamp."""

    study: Study
    rembi: dict[str, Any] | None
    stamp: datetime


def _entries(
    repository: Repository, principal: Principal, host: str, only: str | None = None
) -> list[_Entry]:
    """The discoverable studies (or study ``only``) with their datestamps (their latest version's),
    oldest first; one query for all."""
    with repository.reading() as session:
        latest = (
            select(StudyVersionRow.study_id, func.max(StudyVersionRow.created_at).label("at"))
            .group_by(StudyVersionRow.study_id)
            .subquery()
        )
        counts = select(ImageRow.study_id, func.count().label("n")).group_by(ImageRow.study_id).subquery()
        query = (
            select(StudyRow, latest.c.at, func.coalesce(counts.c.n, 0))
            .outerjoin(latest, latest.c.study_id == StudyRow.id)
            .outerjoin(counts, counts.c.study_id == StudyRow.id)
            .where(access.discoverable(principal))
        )
        if only is not None:
            query = query.where(StudyRow.id == only)
        entries = [
            _Entry(
                to_study(row, int(count), principal),
                row.rembi,
                queries.aware(at) or queries.aware(row.created_at) or datetime.now(UTC),
            )
            for row, at, count in session.execute(query)
        ]
    if only is not None and not entries:
        raise OaiError("idDoesNotExist", f"oai:{host}:{only} is not a record of this repository")
    return sorted(entries, key=lambda entry: (entry.stamp, entry.study.id))


def _record(entry: _Entry, links: Links, host: str) -> Record:
    study, stamp = entry.study, entry.stamp
    rembi = Rembi.model_validate(entry.rembi) if entry.rembi else Rembi()
    info = rembi.study
    subjects = [*info.keywords]
    subjects += [m.label or m.id or "" for c in rembi.study_components for m in c.imaging_methods]
    subjects += [b.organism.label or "" for b in rembi.biosamples if b.organism is not None]
    dublin_core = {
        "title": [info.title or study.name],
        "creator": [person.name for person in info.authors if person.name],
        "subject": [subject for subject in subjects if subject],
        "description": [info.description or study.description or study.name],
        "publisher": ["fairimage"],
        "date": [stamp.date().isoformat()],
        "type": ["Dataset"],
        "format": ["OME-Zarr 0.5"],
        "identifier": [links.pid(study.id)],
        "rights": [LICENSES[info.license]] if info.license in LICENSES else [],
    }
    datacite = exports.datacite(study, rembi, links, stamp.year, None)
    return Record(f"oai:{host}:{study.id}", stamp, dublin_core, datacite)
