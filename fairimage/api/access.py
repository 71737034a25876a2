"""Consent terms and access requests over HTTP: apply, see the state, and (owners, data stewards) decide."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from fairimage import ontology
from fairimage.api.deps import NoBody, PrincipalDep, RepositoryDep
from fairimage.api.schemas import RequestBody
from fairimage.model.governance.duo import DataUse, Match, ResearchPurpose
from fairimage.model.governance.policy import RequestState
from fairimage.services.governance import access_requests, policies
from fairimage.services.governance.access_requests import AccessRequest

router = APIRouter(tags=["access"])


class AssessmentOut(BaseModel):
    decision: str = Field(description="admitted, review or refused, by the study's DUO consent terms")
    reasons: list[str]
    conditions: list[str]

    @classmethod
    def of(cls, result: Match) -> AssessmentOut:
        return cls(decision=result.decision, reasons=list(result.reasons), conditions=list(result.conditions))


class AccessRequestOut(BaseModel):
    id: str
    study_id: str
    study: str
    applicant: str
    purpose: ResearchPurpose
    assessment: AssessmentOut
    state: RequestState
    created_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str
    access_until: datetime | None

    @classmethod
    def of(cls, request: AccessRequest) -> AccessRequestOut:
        fields: dict[str, Any] = {
            name: getattr(request, name) for name in cls.model_fields if name != "assessment"
        }
        return cls(**fields, assessment=AssessmentOut.of(request.assessment))


class AccessRequestIn(RequestBody):
    study: str = Field(description="study id or name")
    purpose: ResearchPurpose


class ApprovalIn(RequestBody):
    until: datetime | None = Field(default=None, description="when access ends (capped by the consent's TS)")
    note: str = Field(default="", max_length=2000)


class NoteIn(RequestBody):
    note: str = Field(min_length=1, max_length=2000, description="the reason, shown to the applicant")


class TermOut(BaseModel):
    """A DUO term: what every bundled ontology's term has (id, IRI, label, synonyms, parents) and DUO's own
    shorthand, definition and kind, so a client reading /api/ontologies/{name}/terms reads this too."""

    id: str
    iri: str
    shorthand: str
    label: str
    definition: str
    kind: str
    synonyms: list[str]
    parents: list[str]


@router.get("/api/ontologies/duo/terms", response_model=list[TermOut], summary="The bundled DUO terms")
def duo_terms(q: Annotated[str, Query(description="words of a label or a shorthand")] = "") -> list[TermOut]:
    words = q.lower().split()
    return [
        TermOut(
            id=term.id,
            iri=term.iri,
            shorthand=term.shorthand,
            label=term.label,
            definition=term.definition,
            kind=term.kind,
            synonyms=[term.shorthand],
            parents=[term.parent] if term.parent else [],
        )
        for term in ontology.duo().terms
        if all(word in f"{term.shorthand} {term.label} {term.id}".lower() for word in words)
    ]


@router.put(
    "/api/studies/{study_id}/data-use",
    response_model=DataUse | None,
    summary="Set a study's consent terms (DUO); owners, data stewards and admins",
    description=(
        "Sets the study's GA4GH DUO consent terms, which decide the research purposes an access request "
        "can be approved for (`null` clears them). It does **not** set who may read the study (public, "
        "embargoed, restricted): that is `PUT /api/studies/{study_id}/policy`; a body that carries a "
        "policy here is refused with 422."
    ),
)
def set_data_use(
    study_id: str, body: DataUse | None, repository: RepositoryDep, principal: PrincipalDep
) -> DataUse | None:
    return policies.set_data_use(repository, principal, study_id, body)


@router.post(
    "/api/studies/{study_id}/access-assessment",
    response_model=AssessmentOut,
    summary="What the study's consent says of a research purpose, without applying",
)
def assess(
    study_id: str, purpose: ResearchPurpose, repository: RepositoryDep, principal: PrincipalDep
) -> AssessmentOut:
    return AssessmentOut.of(access_requests.assess(repository, principal, study_id, purpose))


@router.post("/api/access-requests", response_model=AccessRequestOut, status_code=201, summary="Apply")
def submit(body: AccessRequestIn, repository: RepositoryDep, principal: PrincipalDep) -> AccessRequestOut:
    return AccessRequestOut.of(access_requests.submit(repository, principal, body.study, body.purpose))


@router.get(
    "/api/access-requests",
    response_model=list[AccessRequestOut],
    summary="Your requests, and those of the studies you govern",
)
def list_requests(
    repository: RepositoryDep,
    principal: PrincipalDep,
    study: Annotated[str | None, Query(description="study id or name")] = None,
    state: Annotated[RequestState | None, Query()] = None,
) -> list[AccessRequestOut]:
    found = access_requests.list_requests(repository, principal, study, state.value if state else None)
    return [AccessRequestOut.of(request) for request in found]


@router.get("/api/access-requests/{request_id}", response_model=AccessRequestOut, summary="One request")
def get_request(request_id: str, repository: RepositoryDep, principal: PrincipalDep) -> AccessRequestOut:
    return AccessRequestOut.of(access_requests.get_request(repository, principal, request_id))


@router.post("/api/access-requests/{request_id}/approve", response_model=AccessRequestOut)
def approve(
    request_id: str, body: ApprovalIn, repository: RepositoryDep, principal: PrincipalDep
) -> AccessRequestOut:
    decided = access_requests.approve(repository, principal, request_id, body.until, body.note)
    return AccessRequestOut.of(decided)


@router.post("/api/access-requests/{request_id}/deny", response_model=AccessRequestOut)
def deny(
    request_id: str, body: NoteIn, repository: RepositoryDep, principal: PrincipalDep
) -> AccessRequestOut:
    return AccessRequestOut.of(access_requests.deny(repository, principal, request_id, body.note))


@router.post(
    "/api/access-requests/{request_id}/withdraw", response_model=AccessRequestOut, dependencies=[NoBody]
)
def withdraw(request_id: str, repository: RepositoryDep, principal: PrincipalDep) -> AccessRequestOut:
    return AccessRequestOut.of(access_requests.withdraw(repository, principal, request_id))


@router.post("/api/access-requests/{request_id}/revoke", response_model=AccessRequestOut)
def revoke(
    request_id: str, body: NoteIn, repository: RepositoryDep, principal: PrincipalDep
) -> AccessRequestOut:
    return AccessRequestOut.of(access_requests.revoke(repository, principal, request_id, body.note))
