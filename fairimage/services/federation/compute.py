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

from sqlalchemy.orm import Session

from fairimage.catalog import queries
from fairimage.catalog.tables import AnalysisRunRow, StudyRow
from fairimage.model.errors import ConflictError, FairimageError, InvalidInputError, NotFoundError
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
    return Request(analysis, chosen, get_dataset(repository, principal, found.name, found.version))


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
        raw = _sandboxed(settings, name, chosen, [(item.image_id, item.split) for item in items])
        run.outputs = _checked(analysis, raw, settings.min_cell)
        run.status = PENDING if _needs_review(repository, found.studies) else RELEASED
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
            if parameter.choices and chosen[key] not in parameter.choices:
                raise ValueError(chosen[key])
        except ValueError:
            raise InvalidInputError(f"{key}={given[key]!r}: {parameter.help}") from None
    return chosen


def _sandboxed(
    settings: Settings, name: str, parameters: dict[str, Any], items: list[tuple[str, str]]
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
        return {"weights": check_weights(raw.get("weights"), raw.get("n"), k), "n": raw.get("n")}
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
    if principal.sees_everything:
        return True
    studies = [session.get(StudyRow, study_id) for study_id in row.studies]
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
