"""A study's QC thresholds: the defaults (each with its reason, model/qc/thresholds.py) and what the study
changes, set by those who govern it, audited; every QC run of its plates uses them and records them."""

from __future__ import annotations

from typing import Any

from fairimage.catalog import queries
from fairimage.model.errors import NotFoundError
from fairimage.model.governance.policy import Principal
from fairimage.model.qc.metrics import MEASURES
from fairimage.model.qc.thresholds import QcThresholds, thresholds_with
from fairimage.services.governance import access, audit
from fairimage.services.repository import Repository


def study_thresholds(repository: Repository, principal: Principal, study: str) -> QcThresholds:
    """The thresholds QC applies to ``study``'s plates, for those who may read it."""
    study_id = access.check_study(repository, principal, study)
    with repository.reading() as session:
        row = queries.study_by_id_or_name(session, study_id)
        if row is None:
            raise NotFoundError(f"study {study!r} not found")
        return thresholds_with(row.qc_thresholds or {}, MEASURES)


def set_thresholds(
    repository: Repository, principal: Principal, study: str, changes: dict[str, Any]
) -> QcThresholds:
    """Replace what ``study`` changes of the defaults with ``changes`` (empty: back to the defaults)."""
    thresholds = thresholds_with(changes, MEASURES)
    with repository.transaction() as session:
        row = access.governed_study(session, principal, study)
        row.qc_thresholds = thresholds.changed() or None
        audit.record(
            session,
            principal.name,
            "study.qc_thresholds",
            f"study:{row.id}",
            origin=principal.origin,
            thresholds=thresholds.changed(),
        )
    return thresholds
