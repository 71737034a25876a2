"""Access requests to restricted studies, as in REMS: a user applies with a research purpose, the purpose
is assessed against the study's DUO consent terms, and the study's owner or a data steward approves it
(a grant, with an expiry) or denies it with a reason. The applicant sees the state; an approval can be
revoked, and the revocation holds from the next request on. Every step is in the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from fairimage import ontology
from fairimage.catalog import queries
from fairimage.catalog.tables import AccessRequestRow, GrantRow, StudyRow, UserRow
from fairimage.model.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError
from fairimage.model.governance.duo import DataUse, Decision, Match, ResearchPurpose, match, parse_purpose
from fairimage.model.governance.policy import PolicyKind, Principal, RequestState, Scope, parse_request_state
from fairimage.model.study import new_id
from fairimage.services.governance import access, audit, policies
from fairimage.services.repository import Repository


@dataclass(frozen=True)
class AccessRequest:
    id: str
    study_id: str
    study: str
    applicant: str
    purpose: ResearchPurpose
    assessment: Match
    state: RequestState
    created_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str
    grant_id: str | None
    access_until: datetime | None
    applicant_orcid: str | None = None  # the applicant's ORCID iD, from their identity provider


def assess(repository: Repository, principal: Principal, study: str, purpose: ResearchPurpose) -> Match:
    """What the study's consent terms say of ``purpose``, without applying (a dry run)."""
    study_id = access.find_study(repository, principal, study)
    with repository.reading() as session:
        row = session.get(StudyRow, study_id)
        assert row is not None
        return _assess(row, parse_purpose(ontology.duo(), purpose))


def submit(
    repository: Repository, principal: Principal, study: str, purpose: ResearchPurpose
) -> AccessRequest:
    """Apply for access to a restricted study. A purpose its consent terms refuse is not submitted: the
    applicant is told at once which terms refuse it."""
    access.require(principal, Scope.WRITE)
    parsed = parse_purpose(ontology.duo(), purpose)
    study_id = access.find_study(repository, principal, study)
    with repository.transaction() as session:
        row = session.get(StudyRow, study_id)
        assert row is not None and principal.user_id is not None
        if row.policy != PolicyKind.RESTRICTED.value:
            raise ConflictError(f"study {row.name!r} is {row.policy}: access is not given by request")
        if access.may_read_study(principal, row):
            raise ConflictError(f"study {row.name!r}: you may read it already")
        pending = session.scalar(
            select(AccessRequestRow.id).where(
                AccessRequestRow.study_id == row.id,
                AccessRequestRow.user_id == principal.user_id,
                AccessRequestRow.state == RequestState.SUBMITTED.value,
            )
        )
        if pending is not None:
            raise ConflictError(f"study {row.name!r}: your request {pending} is still waiting for a decision")
        assessment = _assess(row, parsed)
        if assessment.decision is Decision.REFUSED:
            raise ForbiddenError(
                f"study {row.name!r}: its consent terms do not allow this purpose: "
                f"{'; '.join(assessment.reasons)}"
            )
        request = AccessRequestRow(
            id=new_id("request"),
            study_id=row.id,
            user_id=principal.user_id,
            purpose=parsed.model_dump(mode="json"),
            assessment=_match_json(assessment),
            state=RequestState.SUBMITTED.value,
            created_at=datetime.now(UTC),
        )
        session.add(request)
        session.flush()
        audit.record(
            session,
            principal.name,
            "access.request",
            f"study:{row.id}",
            decision=assessment.decision.value,
            origin=principal.origin,
            request=request.id,
            purpose=parsed.title,
        )
        return _request(session, request)


def list_requests(
    repository: Repository, principal: Principal, study: str | None = None, state: str | None = None
) -> list[AccessRequest]:
    """The requests ``principal`` may see: their own, and those of the studies they govern (all, for
    stewards and admins), oldest first."""
    access.require(principal, Scope.READ)
    with repository.reading() as session:
        query = select(AccessRequestRow).join(StudyRow).order_by(AccessRequestRow.created_at)
        if not principal.sees_everything:
            query = query.where(
                or_(AccessRequestRow.user_id == principal.user_id, StudyRow.owner_id == principal.user_id)
            )
        if study is not None:
            query = query.where(or_(StudyRow.id == study, StudyRow.name == study))
        if state is not None:
            query = query.where(AccessRequestRow.state == parse_request_state(state).value)
        return [_request(session, row) for row in session.scalars(query)]


def get_request(repository: Repository, principal: Principal, request_id: str) -> AccessRequest:
    with repository.reading() as session:
        return _request(session, _visible_request(session, principal, request_id))


def approve(
    repository: Repository,
    principal: Principal,
    request_id: str,
    until: datetime | None = None,
    note: str = "",
) -> AccessRequest:
    """Approve a waiting request: the applicant gets a grant until ``until`` (at most the consent's TS
    months). A purpose the consent refuses cannot be approved: deny it, or the applicant asks again."""
    with repository.transaction() as session:
        row = _decidable(session, principal, request_id)
        study = access.governed_study(session, principal, row.study_id)
        assessment = _assess(study, ResearchPurpose.model_validate(row.purpose))
        if assessment.decision is Decision.REFUSED:
            raise ConflictError(
                f"request {row.id}: the study's consent does not allow this purpose "
                f"({'; '.join(assessment.reasons)}); deny it instead"
            )
        until = _access_until(study, until)
        applicant = session.get(UserRow, row.user_id)
        assert applicant is not None
        reason = f"access request {row.id}" + (f": {note}" if note else "")
        grant = policies.insert_grant(session, principal, study, applicant, until, reason)
        _decide(session, principal, row, RequestState.APPROVED, note, assessment)
        row.grant_id = grant.id
        return _request(session, row)


def deny(repository: Repository, principal: Principal, request_id: str, note: str) -> AccessRequest:
    """Deny a waiting request; the reason is shown to the applicant."""
    _require_note(note, "a denial")
    with repository.transaction() as session:
        row = _decidable(session, principal, request_id)
        access.governed_study(session, principal, row.study_id)
        _decide(session, principal, row, RequestState.DENIED, note)
        return _request(session, row)


def withdraw(repository: Repository, principal: Principal, request_id: str) -> AccessRequest:
    """The applicant takes back a request that waits for a decision."""
    access.require(principal, Scope.WRITE)
    with repository.transaction() as session:
        row = _visible_request(session, principal, request_id)
        if row.user_id != principal.user_id:
            raise NotFoundError(f"access request {request_id!r} not found among yours")
        if row.state != RequestState.SUBMITTED.value:
            raise ConflictError(f"request {row.id} is {row.state}; only a waiting request can be withdrawn")
        _decide(session, principal, row, RequestState.WITHDRAWN, "")
        return _request(session, row)


def revoke(repository: Repository, principal: Principal, request_id: str, note: str) -> AccessRequest:
    """End an approved request's access now: its grant is revoked, effective at the next request."""
    _require_note(note, "a revocation")
    with repository.transaction() as session:
        row = _visible_request(session, principal, request_id)
        access.governed_study(session, principal, row.study_id)
        if row.state != RequestState.APPROVED.value:
            raise ConflictError(f"request {row.id} is {row.state}; only an approved request can be revoked")
        grant = session.get(GrantRow, row.grant_id) if row.grant_id else None
        if grant is not None and grant.revoked_at is None:
            grant.revoked_at = datetime.now(UTC)
        _decide(session, principal, row, RequestState.REVOKED, note)
        return _request(session, row)


def _require_note(note: str, what: str) -> None:
    if not note.strip():
        raise InvalidInputError(f"{what} needs a reason the applicant can read (--note)")


def _assess(study: StudyRow, purpose: ResearchPurpose) -> Match:
    if not study.data_use:
        return Match(Decision.REVIEW, ("the study has no DUO consent terms; a data steward decides",), ())
    return match(ontology.duo(), DataUse.model_validate(study.data_use), purpose)


def _access_until(study: StudyRow, until: datetime | None) -> datetime | None:
    now = datetime.now(UTC)
    if until is not None and until <= now:
        raise InvalidInputError(f"--until {until.date()}: the date has passed; give a future one")
    months = DataUse.model_validate(study.data_use).months if study.data_use else None
    if months is None:
        return until
    limit = now + timedelta(days=round(months * 30.44))  # TS: "approved for a specific number of months"
    if until is not None and until > limit:
        raise InvalidInputError(
            f"--until {until.date()}: the consent allows {months} months (TS), until {limit.date()} at most"
        )
    return until or limit


def _decide(
    session: Session,
    principal: Principal,
    row: AccessRequestRow,
    state: RequestState,
    note: str,
    assessment: Match | None = None,
) -> None:
    row.state = state.value
    row.decided_by = principal.name
    row.decided_at = datetime.now(UTC)
    row.decision_note = note
    if assessment is not None:
        row.assessment = _match_json(assessment)
    audit.record(
        session,
        principal.name,
        f"access.{state.value}",
        f"study:{row.study_id}",
        origin=principal.origin,
        request=row.id,
        note=note,
    )


def _decidable(session: Session, principal: Principal, request_id: str) -> AccessRequestRow:
    row = _visible_request(session, principal, request_id)
    if row.state != RequestState.SUBMITTED.value:
        raise ConflictError(f"request {row.id} is {row.state} already")
    return row


def _visible_request(session: Session, principal: Principal, request_id: str) -> AccessRequestRow:
    """A request its applicant, the study's owner, stewards and admins may see; NotFoundError to others."""
    access.require(principal, Scope.READ)
    row = session.get(AccessRequestRow, request_id)
    study = session.get(StudyRow, row.study_id) if row is not None else None
    if row is None or study is None:
        raise NotFoundError(f"access request {request_id!r} not found")
    if not (principal.sees_everything or principal.user_id in (row.user_id, study.owner_id)):
        raise NotFoundError(f"access request {request_id!r} not found")
    return row


def _request(session: Session, row: AccessRequestRow) -> AccessRequest:
    study = session.get(StudyRow, row.study_id)
    applicant = session.get(UserRow, row.user_id)
    grant = session.get(GrantRow, row.grant_id) if row.grant_id else None
    assert study is not None and applicant is not None
    assessment = row.assessment
    return AccessRequest(
        id=row.id,
        study_id=study.id,
        study=study.name,
        applicant=applicant.name,
        purpose=ResearchPurpose.model_validate(row.purpose),
        assessment=Match(
            Decision(assessment["decision"]), tuple(assessment["reasons"]), tuple(assessment["conditions"])
        ),
        state=RequestState(row.state),
        created_at=queries.aware(row.created_at) or row.created_at,
        decided_by=row.decided_by,
        decided_at=queries.aware(row.decided_at),
        decision_note=row.decision_note,
        grant_id=row.grant_id,
        access_until=queries.aware(grant.expires_at) if grant is not None else None,
        applicant_orcid=applicant.orcid,
    )


def _match_json(result: Match) -> dict[str, Any]:
    return {
        "decision": result.decision.value,
        "reasons": list(result.reasons),
        "conditions": list(result.conditions),
        "duo": ontology.duo().version_iri,
    }
