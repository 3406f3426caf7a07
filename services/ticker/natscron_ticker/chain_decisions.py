"""What the leader decided for a chained schedule on the end of one of its parents' runs:
a run fired, held (the parent's run does not qualify, or another parent has yet to run),
or dropped (the child is paused or inactive).

Every decision goes through `ChainDecisions.record`: counted
(`natscron_ticker_chain_decisions_total{decision}`) and logged. It is the one place that
hands chain decisions on, so that whatever keeps the ticker's decisions for a schedule's
history takes them from here.
"""

import logging
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from prometheus_client import Counter

log = logging.getLogger(__name__)


class ChainDecisionKind(StrEnum):
    FIRED = "fired"
    HELD = "held"
    DROPPED = "dropped"


@dataclass(frozen=True)
class ChainDecision:
    kind: ChainDecisionKind
    scheduled_job_id: str
    """The child's id."""
    parent_id: str
    parent_job_id: str
    """The parent's run whose end was decided on."""
    reason: str
    at: datetime
    job_id: str | None = None
    """The chained run: fired, or the one dropped."""


class ChainDecisions:
    def __init__(self, decisions: Counter) -> None:
        self._decisions = decisions

    def record(self, decision: ChainDecision) -> None:
        self._decisions.labels(decision.kind.value).inc()
        log.info(
            "%s: chain %s after job %s of %s%s: %s",
            decision.scheduled_job_id,
            decision.kind.value,
            decision.parent_job_id,
            decision.parent_id,
            "" if decision.job_id is None else f" (job {decision.job_id})",
            decision.reason,
        )
