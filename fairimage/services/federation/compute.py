"""Analyses that go to the data: a researcher runs an allow-listed analysis on a dataset they may read
(every study of it: public, or granted after an access request), and gets back only what the analysis
declares (aggregates), checked and with small cells suppressed. The analysis runs in a separate process
with limits on memory and time; every run is audited (who, what, which data, a digest of the outputs);
where a study of the dataset is restricted, the outputs wait for its owner or a data steward to release
them."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from fairimage.catalog import federation as catalog
from fairimage.catalog import queries
from fairimage.catalog.tables import AnalysisApprovalRow, AnalysisRunRow, StudyRow
from fairimage.model.errors import (
    ConflictError,
    FairimageError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
)
from fairimage.model.federation.analyses import ANALYSES, Analysis, OutputError, check_table, check_weights
from fairimage.model.governance.policy import PolicyKind, Principal, Scope
from fairimage.model.study import new_id
from fairimage.services.datasets.datasets import Dataset, find_dataset, get_dataset
from fairimage.services.governance import access, audit
from fairimage.services.repository import Repository
from fairimage.settings import Settings

RELEASED, PENDING, FAILED = "released", "pending_review", "failed"
# How a process that hit its address-space limit fails: Python's error, or the loader's for a library.
MEMORY_SIGNS = ("MemoryError", "out of memory", "failed to map segment", "Cannot allocate memory")


@dataclass(frozen=True)
class AnalysisRun:
    id: str
    analysis: str
    dataset: str
    requester: str
    parameters: dict[str, Any]
    images: int
    status: str
    outputs: dict[str, Any] | None  # None until released (and for those who may not see them)
    error: str
    created_at: datetime


def analyses() -> list[Analysis]:
    """The node's allow-list."""
    return list(ANALYSES.values())


@dataclass(frozen=True)
class Request:
    """A run asked for and checked: the analysis, its parameters, the dataset the caller may read."""

    analysis: Analysis
    parameters: dict[str, Any]
    dataset: Dataset


def prepare(
    repository: Repository, principal: Principal, name: str, dataset: str, parameters: dict[str, str]
) -> Request:
    """Check a run before it starts: an analysis of the list, its parameters, a dataset (NAME,
    NAME:VERSION or its id) every study of which the caller may read."""
    access.require(principal, Scope.READ)
    analysis = ANALYSES.get(name)
    if analysis is None:
        raise NotFoundError(f"analysis {name!r} is not on this node's list; the list: {', '.join(ANALYSES)}")
    chosen = _parameters(analysis, parameters)
    found = find_dataset(repository, principal, dataset)  # NotFoundError unless every study is readable
    request = Request(analysis, chosen, get_dataset(repository, principal, found.name, found.version))
    if analysis.needs_labels and (
        not request.dataset.items or any(item.label_id is None for item in request.dataset.items)
    ):
        raise InvalidInputError(
            f"analysis {name} learns from labels, and dataset {found.name}:{found.version} has none; make a "
            "version with them: fairimage dataset create NAME --label LABEL ..."
        )
    if analysis.federated:
        _check_coordinator(repository, name, chosen)
        _check_approved(repository, principal, request)
    return request


def _check_coordinator(repository: Repository, name: str, chosen: dict[str, Any]) -> None:
    """A federated run sends its weights to a coordinator: only to one on a host of this node's peers."""
    address, session = str(chosen["coordinator"]), str(chosen["session"])
    host = urlsplit(f"//{address}").hostname if address else None
    if not host or not session:
        raise InvalidInputError(
            f"analysis {name} is one node's part of a federated run: give coordinator=HOST:PORT and "
            "session=TOKEN as the coordinator does ('fairimage train')"
        )
    with repository.reading() as session_:
        hosts = {urlsplit(url).hostname for _, url in catalog.peer_addresses(session_)}
    if host not in hosts:
        raise InvalidInputError(
            f"coordinator={address}: {host} is not the host of a peer of this node, and weights go only to "
            "peers; its operator adds the coordinator's node first: fairimage peer add URL"
        )


def _check_approved(repository: Repository, principal: Principal, request: Request) -> None:
    """Weights leave a federated run each round: over restricted studies the plan is approved first."""
    found = request.dataset
    if not _needs_review(repository, found.studies):
        return
    with repository.reading() as session:
        approved = _approval(session, request.analysis.name, found.id, principal.name)
    if approved is None:
        raise ForbiddenError(
            f"dataset {found.name}:{found.version} holds restricted studies, so a run of "
            f"{request.analysis.name} on it needs their owner's or a data steward's approval first: "
            f"fairimage analysis approve {request.analysis.name} {found.name}:{found.version} "
            f"--for {principal.name}"
        )


def _approval(session: Session, analysis: str, dataset_id: str, requester: str) -> AnalysisApprovalRow | None:
    return session.scalars(
        select(AnalysisApprovalRow).where(
            AnalysisApprovalRow.analysis == analysis,
            AnalysisApprovalRow.dataset_id == dataset_id,
            AnalysisApprovalRow.requester == requester,
        )
    ).first()


@dataclass(frozen=True)
class Approval:
    id: str
    analysis: str
    dataset: str
    requester: str
    approved_by: str


def approve(
    repository: Repository, principal: Principal, name: str, dataset: str, requester: str
) -> Approval:
    """Approve a plan before it runs: ``requester`` may run ``name`` on the dataset (its studies' owner, a
    data steward or an admin; for federated training over restricted studies). Approving twice is one
    approval."""
    access.require(principal, Scope.WRITE)
    analysis = ANALYSES.get(name)
    if analysis is None:
        raise NotFoundError(f"analysis {name!r} is not on this node's list; the list: {', '.join(ANALYSES)}")
    found = find_dataset(repository, principal, dataset)
    if not requester.strip():
        raise InvalidInputError("--for: give the name of the person who will run it, as their token says")
    with repository.transaction() as session:
        if not _may_approve(session, principal, found.studies):
            raise NotFoundError(f"dataset {dataset!r} not found among those you may approve runs on")
        row = _approval(session, name, found.id, requester)
        if row is None:
            row = AnalysisApprovalRow(
                id=new_id("approval"),
                analysis=name,
                dataset_id=found.id,
                requester=requester,
                approved_by=principal.name,
                created_at=datetime.now(UTC),
            )
            session.add(row)
            audit.record(
                session,
                principal.name,
                "analysis.approve",
                f"dataset:{found.id}",
                origin=principal.origin,
                analysis=name,
                requester=requester,
            )
        return Approval(row.id, row.analysis, row.dataset_id, row.requester, row.approved_by)


def run_analysis(
    repository: Repository, principal: Principal, name: str, dataset: str, parameters: dict[str, str]
) -> AnalysisRun:
    """Run ``name`` on the dataset and keep the checked outputs."""
    return execute(repository, principal, prepare(repository, principal, name, dataset, parameters))


def execute(repository: Repository, principal: Principal, request: Request) -> AnalysisRun:
    """Run a prepared request in the sandbox and keep (and audit) what may leave of it."""
    analysis, chosen, found = request.analysis, request.parameters, request.dataset
    name, items = analysis.name, found.items
    settings = repository.settings
    run = AnalysisRunRow(
        id=new_id("analysis"),
        analysis=name,
        dataset_id=found.id,
        studies=list(found.studies),
        requester=principal.name,
        parameters=chosen,
        images=len(items),
        status=FAILED,
        created_at=datetime.now(UTC),
    )
    try:
        raw = _sandboxed(settings, name, chosen, [(i.image_id, i.split, i.label_id) for i in items])
        run.outputs = _checked(analysis, raw, settings.min_cell)
        run.status = RELEASED
        if _needs_review(repository, found.studies):
            if analysis.federated:  # approved before it started (prepare): its weights have left
                with repository.reading() as session:
                    approval = _approval(session, name, found.id, principal.name)
                run.released_by = approval.approved_by if approval else None
                run.released_at = datetime.now(UTC)
            else:
                run.status = PENDING
    except FairimageError as exc:
        run.error = exc.message
    with repository.transaction() as session:
        session.add(run)
        digest = hashlib.sha256(json.dumps(run.outputs, sort_keys=True).encode()).hexdigest()
        audit.record(
            session,
            principal.name,
            "analysis.run",
            f"dataset:{found.id}",
            run.status,
            principal.origin,
            run=run.id,
            analysis=name,
            parameters=chosen,
            images=len(items),
            outputs_sha256=digest,
            error=run.error,
        )
    return _shown(run, principal)


def check_parameters(name: str, given: dict[str, str]) -> dict[str, Any]:
    """The parameters of an analysis of the list as it would run them; InvalidInputError naming one."""
    return _parameters(ANALYSES[name], given)


def _parameters(analysis: Analysis, given: dict[str, str]) -> dict[str, Any]:
    unknown = set(given) - set(analysis.parameters)
    if unknown:
        known = ", ".join(analysis.parameters) or "none"
        raise InvalidInputError(
            f"analysis {analysis.name}: no parameter {sorted(unknown)[0]!r} (it takes: {known})"
        )
    chosen = {}
    for key, parameter in analysis.parameters.items():
        try:
            chosen[key] = parameter.kind(given[key]) if key in given else parameter.default
            if not parameter.allows(chosen[key]):
                raise ValueError(chosen[key])
        except ValueError:
            raise InvalidInputError(f"{key}={given[key]!r}: {parameter.help}") from None
    return chosen


def _sandboxed(
    settings: Settings, name: str, parameters: dict[str, Any], items: list[tuple[str, str, str | None]]
) -> Any:
    """The analysis's outputs, from a process of its own within the node's limits."""
    request = {
        "settings": settings.model_dump(mode="json"),
        "analysis": name,
        "parameters": parameters,
        "items": items,
    }
    memory = settings.analysis_memory_mb * 1024 * 1024
    seconds = settings.analysis_seconds
    command = [
        sys.executable,
        "-m",
        "fairimage.services.federation.sandbox",
        str(memory),
        str(int(seconds) + 1),
    ]
    try:
        done = subprocess.run(
            command, input=json.dumps(request), capture_output=True, text=True, timeout=seconds
        )
    except subprocess.TimeoutExpired:
        raise ConflictError(f"analysis {name} ran out of time ({seconds:g} s, analysis_seconds)") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        if any(sign in done.stderr for sign in MEMORY_SIGNS) or done.returncode < 0:
            last = f"{last} (the limit is {settings.analysis_memory_mb} MB, analysis_memory_mb)"
        raise ConflictError(f"analysis {name} failed: {last[:500]}")
    try:
        return json.loads(done.stdout)
    except ValueError:
        raise ConflictError(f"analysis {name} returned something other than JSON") from None


def _checked(analysis: Analysis, raw: Any, k: int) -> dict[str, Any]:
    """Only what the analysis declares, and only as the rules allow; OutputError keeps all of it here."""
    try:
        if not isinstance(raw, dict):
            raise OutputError("the outputs are not a mapping")
        if analysis.returns == "table":
            return {"table": check_table(raw.get("table"), k), "min_cell": k}
        return {
            "weights": check_weights(raw.get("weights"), raw.get("n"), k),
            "n": raw.get("n"),
            "table": check_table(raw.get("table", []), k),  # how well it does here, in aggregate
            "min_cell": k,
        }
    except OutputError as exc:
        raise ConflictError(
            f"analysis {analysis.name}: its outputs break the node's rules ({exc}); none leave"
        ) from None


def _needs_review(repository: Repository, studies: list[str]) -> bool:
    """Outputs over a restricted study wait for its owner or a steward."""
    with repository.reading() as session:
        rows = [session.get(StudyRow, study_id) for study_id in studies]
    return any(row is not None and row.policy == PolicyKind.RESTRICTED.value for row in rows)


def get_run(repository: Repository, principal: Principal, run_id: str) -> AnalysisRun:
    """A run, to its requester and to those who may review it (its outputs once released, to reviewers)."""
    access.require(principal, Scope.READ)
    with repository.reading() as session:
        row = session.get(AnalysisRunRow, run_id)
        if row is None or not (row.requester == principal.name or _may_review(session, principal, row)):
            raise NotFoundError(f"analysis run {run_id!r} not found")
        return _shown(row, principal, _may_review(session, principal, row))


def release(repository: Repository, principal: Principal, run_id: str) -> AnalysisRun:
    """Release the outputs of a run waiting for review (its studies' owner, a steward or an admin)."""
    access.require(principal, Scope.WRITE)
    with repository.transaction() as session:
        row = session.get(AnalysisRunRow, run_id)
        if row is None or not _may_review(session, principal, row):
            raise NotFoundError(f"analysis run {run_id!r} not found")
        if row.status != PENDING:
            raise ConflictError(f"analysis run {run_id} is {row.status}, not waiting for review")
        row.status, row.released_by, row.released_at = RELEASED, principal.name, datetime.now(UTC)
        audit.record(
            session,
            principal.name,
            "analysis.release",
            f"dataset:{row.dataset_id}",
            origin=principal.origin,
            run=row.id,
        )
        return _shown(row, principal, True)


def _may_review(session: Session, principal: Principal, row: AnalysisRunRow) -> bool:
    return _may_approve(session, principal, row.studies)


def _may_approve(session: Session, principal: Principal, study_ids: list[str]) -> bool:
    """Those who decide what leaves: the studies' owner, a data steward or an admin."""
    if principal.sees_everything:
        return True
    studies = [session.get(StudyRow, study_id) for study_id in study_ids]
    return bool(studies) and all(s is not None and s.owner_id == principal.user_id for s in studies)


def _shown(row: AnalysisRunRow, principal: Principal, reviewer: bool = False) -> AnalysisRun:
    visible = row.status == RELEASED or (reviewer and row.status == PENDING)
    return AnalysisRun(
        id=row.id,
        analysis=row.analysis,
        dataset=row.dataset_id,
        requester=row.requester,
        parameters=row.parameters,
        images=row.images,
        status=row.status,
        outputs=row.outputs if visible else None,
        error=row.error,
        created_at=queries.aware(row.created_at) or row.created_at,
    )
