"""Keeping up with the peers while the server runs: every ``federation_hours``, harvest each peer's changes
and witness its audit checkpoint (what 'fairimage harvest' and 'fairimage witness' do by hand)."""

from __future__ import annotations

import logging

from fairimage.model.governance.policy import operator
from fairimage.services.federation import harvest, witness
from fairimage.services.repository import Repository
from fairimage.services.schedule import Schedule

_log = logging.getLogger("fairimage.federation")


def federation_schedule(repository: Repository) -> Schedule:
    principal = operator("federation-schedule")

    def keep_up() -> None:
        for outcome in harvest.harvest(repository, principal):
            if outcome.error:
                _log.error("harvest of %s: %s", outcome.peer, outcome.error)
        for witnessed in witness.witness(repository, principal):
            if witnessed.status in ("refused", "failed"):
                _log.error("witnessing %s: %s: %s", witnessed.peer, witnessed.status, witnessed.message)

    return Schedule(repository, "federation", repository.settings.federation_hours, keep_up)
