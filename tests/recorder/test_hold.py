"""The hold: a job's events kept until it ends, measured in the stream's time."""

from datetime import UTC, datetime, timedelta
from typing import cast

from nats.aio.msg import Msg

from natscron_recorder.hold import EventHold
from natscron_shared.contract.enums import JobStatus, Priority, Trigger
from natscron_shared.contract.messages import JobEvent, RunRequest

T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
HOLD = 2.0


def event(job_id: str, status: JobStatus, at: datetime) -> tuple[Msg, JobEvent]:
    job = RunRequest(
        job_id=job_id,
        scheduled_job_id="s",
        trigger=Trigger.SCHEDULED,
        priority=Priority.NORMAL,
        scheduled_for=T0,
        created_at=T0,
        scraper="noop",
    )
    return cast(Msg, object()), JobEvent(job=job, status=status, at=at)


def test_a_job_is_let_go_with_its_final_event() -> None:
    hold = EventHold(HOLD)
    assert hold.take([event("a", JobStatus.PENDING, T0)], T0, idle=False) == []
    done = event("a", JobStatus.COMPLETED, T0 + timedelta(seconds=1))
    taken = hold.take([done], T0, idle=False)
    assert [e.status for _, e in taken] == [JobStatus.PENDING, JobStatus.COMPLETED]
    assert len(hold) == 0


def test_a_batch_without_job_events_is_not_idle() -> None:
    """A recorder behind the stream fetching a batch of schedule events only must not let a
    job go by its own clock: the job's final event may be in the next batch."""
    hold = EventHold(HOLD)
    hold.take([event("a", JobStatus.PENDING, T0)], T0, idle=False)
    assert hold.take([], T0 + timedelta(seconds=10 * HOLD), idle=False) == []


def test_with_no_event_coming_the_recorders_own_time_counts() -> None:
    hold = EventHold(HOLD)
    hold.take([event("a", JobStatus.PENDING, T0)], T0, idle=False)
    assert hold.take([], T0 + timedelta(seconds=HOLD / 2), idle=True) == []
    assert len(hold.take([], T0 + timedelta(seconds=HOLD), idle=True)) == 1
