"""KV `last_runs`, and when an interval `from: last_run` fires.

Such an interval fires a period after its previous scheduled run finished. The runner that
ends a run of it (the run request says so: `records_last_run`) puts a `LastRunRecord` in
KV `last_runs` under the schedule's id, never over the record of a later slot's run; every
ticker follows the bucket, so a new leader knows every last end at once.

Where its periods count from is a function of what every ticker holds alike (the spec, its
`ticker_state`, this bucket, when KV stored the spec), so every ticker computes the same
slots, and a slot fired twice around a failover has one job id:

- the entry's run is that of the last slot fired (or a later one): the previous run ended
  at its `finished_at`;
- a slot was fired and its run's end is not known: it is presumed to have ended at the
  latest it could, `longest_run` after its slot, so a run that never reports (a lost
  write, a runner that dies on it forever) does not stop the schedule;
- nothing was fired and no end is known: the first slot is at `start_at`, or a period after
  KV stored the spec.

The slots are then those of the interval counted from a period after that end (or from
`start_at`, if later), or from when the active hours next open if that moment is outside
them: bounds, active hours, jitter, catch-up and `max_runs` as for any interval.
"""

from datetime import UTC, datetime, timedelta
from typing import Annotated, NamedTuple, Self

from pydantic import AfterValidator, BaseModel, ConfigDict

from natscron_shared.contract.enums import JobStatus, Trigger
from natscron_shared.contract.messages import JobEvent
from natscron_shared.contract.models import (
    MAX_INTERVAL,
    Identifier,
    JobId,
    Moment,
    ScheduledJob,
    retry_delay_seconds,
)
from natscron_shared.timing.schedule import SlotSpec, counted_from, first_active


def _final(status: JobStatus) -> JobStatus:
    if not status.is_terminal:
        raise ValueError(f"{status.value!r} is not a final status")
    return status


class LastRunRecord(BaseModel):
    """A KV `last_runs` value: how the schedule's newest ended scheduled run ended."""

    model_config = ConfigDict(frozen=True)

    scheduled_job_id: Identifier
    """The key it is stored under."""
    job_id: JobId
    scheduled_for: Moment
    status: Annotated[JobStatus, AfterValidator(_final)]
    finished_at: Moment
    """The final event's `completed_at`, or its `at` for a run that ended unrun (skipped,
    cancelled while queued)."""

    @classmethod
    def of(cls, event: JobEvent) -> Self | None:
        """The record `event` makes: only the final event of a scheduled run that records
        its end. Raises `pydantic.ValidationError` for a request no record can be made of
        (its schedule's id is no identifier)."""
        request = event.job
        if (
            not request.records_last_run
            or request.trigger is not Trigger.SCHEDULED
            or request.scheduled_job_id is None
            or request.scheduled_for is None
            or not event.status.is_terminal
        ):
            return None
        return cls(
            scheduled_job_id=request.scheduled_job_id,
            job_id=request.job_id,
            scheduled_for=request.scheduled_for,
            status=event.status,
            finished_at=event.completed_at or event.at,
        )


class LastRun(NamedTuple):
    """What the ticker keeps of a `LastRunRecord`: a plain tuple, one per schedule."""

    scheduled_for: datetime
    finished_at: datetime

    @classmethod
    def from_json(cls, value: bytes | str) -> "LastRun":
        """Raises `pydantic.ValidationError` for a value that is not a record."""
        record = LastRunRecord.model_validate_json(value)
        return cls(record.scheduled_for.astimezone(UTC), record.finished_at.astimezone(UTC))


def longest_run(spec: ScheduledJob) -> timedelta:
    """How long after its slot a run of `spec` can still end: each of its `max_retries + 1`
    attempts its whole `timeout_seconds`, and the retry backoffs between them (at most
    `MAX_INTERVAL`, which keeps the slot maths inside the calendar). Time spent queued is
    not counted: nothing bounds it."""
    backoffs = sum(
        retry_delay_seconds(spec.retry_backoff_seconds, attempt)
        for attempt in range(1, spec.max_retries + 1)
    )
    seconds = (spec.max_retries + 1) * spec.timeout_seconds + backoffs
    longest = MAX_INTERVAL.total_seconds()
    return timedelta(seconds=seconds if seconds <= longest else longest)


def previous_run_end(
    spec: ScheduledJob, last_fired_slot: datetime | None, last_run: LastRun | None
) -> datetime | None:
    """When the previous scheduled run ended, known or presumed; None before any."""
    if last_run is not None and (
        last_fired_slot is None or last_run.scheduled_for >= last_fired_slot
    ):
        return last_run.finished_at
    if last_fired_slot is not None:
        return last_fired_slot + longest_run(spec)
    return None


def slots_from_last_run(
    spec: ScheduledJob,
    last_fired_slot: datetime | None,
    last_run: LastRun | None,
    stored_at: datetime,
) -> SlotSpec:
    """The slots of `spec`, an interval `from: last_run`, given the last slot fired (from
    `ticker_state`), the newest end in KV `last_runs` and when KV stored the spec."""
    period = spec.interval_period
    if period is None:
        raise ValueError(f"{spec.scheduled_job_id} is not an interval")
    end = previous_run_end(spec, last_fired_slot, last_run)
    if end is None:
        start = stored_at + period if spec.start_at is None else spec.start_at
    elif spec.start_at is None:
        start = end + period
    else:
        start = max(end + period, spec.start_at)
    return counted_from(spec, first_active(spec, start))
