"""The decision records the ticker makes (`natscron_shared.contract.decisions`), from what a
firing or an adoption knows: `JobOperations` publishes them with the writes it makes anyway,
after a burst's acks, so the fire path gains no round trip."""

from datetime import datetime

from natscron_shared.contract.decisions import Decision, DecisionKind
from natscron_shared.contract.enums import ScheduledJobStatus
from natscron_shared.contract.job_ids import scheduled_job_run_id
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.contract.ticker_state import SlotState, runs_left
from natscron_ticker.catchup import FiringPlan


def of_firing(
    spec: ScheduledJob, before: SlotState, plan: FiringPlan, after: SlotState, at: datetime
) -> list[Decision]:
    """What a firing left unfired: the missed slots catch-up merged or dropped (those after
    `before.handled_until`), and every slot after the last run `max_runs` allows (an open
    window: nothing of the job fires again until its `max_runs` changes)."""
    scheduled_job_id = spec.scheduled_job_id
    decisions = []
    skip = plan.skip
    if skip is not None:
        into = None if skip.into is None else scheduled_job_run_id(scheduled_job_id, skip.into)
        decisions.append(
            Decision(
                scheduled_job_id=scheduled_job_id,
                kind=skip.kind,
                at=at,
                after=before.handled_until,
                until=skip.until,
                slots=skip.slots,
                job_id=into,
                note=f"catchup {spec.catchup.value}",
            )
        )
    if plan.fire and runs_left(spec, after) == 0:
        last = plan.fire[-1]
        decisions.append(
            Decision(
                scheduled_job_id=scheduled_job_id,
                kind=DecisionKind.MAX_RUNS_REACHED,
                at=at,
                after=last,
                slots=plan.over_max_runs or None,
                job_id=scheduled_job_run_id(scheduled_job_id, last),
                note=f"max_runs {spec.max_runs} used up",
            )
        )
    return decisions


def paused(spec: ScheduledJob, since: datetime, at: datetime) -> Decision:
    """The slots after `since` are skipped while `spec` is paused (or inactive): an open
    window, closed by `resumed`."""
    note = spec.paused_reason
    if note is None and spec.status is ScheduledJobStatus.INACTIVE:
        note = "inactive"
    return Decision(
        scheduled_job_id=spec.scheduled_job_id,
        kind=DecisionKind.PAUSED,
        at=at,
        after=since,
        note=note,
    )


def resumed(spec: ScheduledJob, paused_since: datetime, at: datetime) -> Decision:
    """The pause that began at `paused_since` (when the ticker took it: the job's
    `handled_until` since) ended at `at`: the same decision, its window closed."""
    return Decision(
        scheduled_job_id=spec.scheduled_job_id,
        kind=DecisionKind.PAUSED,
        at=at,
        after=paused_since,
        until=at,
    )
