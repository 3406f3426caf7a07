"""Intervals `from: last_run`: the field's validation, and where their periods count from
(`natscron_shared.contract.last_runs`), as pure functions of the spec, the last slot fired,
the newest end in KV `last_runs` and when KV stored the spec."""

import math
from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from natscron_shared.contract.enums import IntervalAnchor, JobStatus, Trigger
from natscron_shared.contract.last_runs import (
    LastRun,
    LastRunRecord,
    longest_run,
    previous_run_end,
    slots_from_last_run,
)
from natscron_shared.contract.messages import JobEvent, slot_run_request
from natscron_shared.contract.models import MAX_INTERVAL, ScheduledJob
from natscron_shared.timing.active_hours import ActiveHours
from natscron_shared.timing.schedule import counted_from, next_fire_after, slots_newest_first
from tests.timing.test_schedule import spec

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
PERIOD = timedelta(minutes=30)


def anchored(**fields: object) -> ScheduledJob:
    return spec(interval={"minutes": 30, "from": "last_run"}, **fields)


# --- the field -------------------------------------------------------------------------------


def test_from_is_start_by_default_and_last_run_on_request() -> None:
    assert spec(interval={"minutes": 30}).interval is not None
    assert spec(interval={"minutes": 30}).counts_from_last_run is False
    assert spec(interval={"minutes": 30, "from": "start"}).counts_from_last_run is False
    job = anchored()
    assert job.interval is not None and job.interval.from_ is IntervalAnchor.LAST_RUN
    assert job.counts_from_last_run and job.interval_period == PERIOD
    assert spec(cron_expression="*/5 * * * *").counts_from_last_run is False


def test_from_takes_only_start_or_last_run_and_only_inside_an_interval() -> None:
    with pytest.raises(ValidationError, match="'start' or 'last_run'"):
        spec(interval={"minutes": 30, "from": "last_finish"})
    with pytest.raises(ValidationError, match="from"):
        spec(interval_minutes=30, **{"from": "last_run"})
    with pytest.raises(ValidationError, match="from"):
        spec(cron_expression="*/5 * * * *", **{"from": "last_run"})


def test_from_survives_the_round_trips_of_kv_and_the_book() -> None:
    job = anchored()
    assert '"from":"last_run"' in job.model_dump_json()
    assert ScheduledJob.model_validate_json(job.model_dump_json()) == job
    # The book keeps the fields that differ from their defaults.
    assert ScheduledJob.model_validate_json(job.model_dump_json(exclude_defaults=True)) == job
    assert "from" not in spec(interval={"minutes": 30}).model_dump_json(exclude_defaults=True)
    assert job.model_dump(mode="json")["interval"]["from"] == "last_run"


# --- counted_from ----------------------------------------------------------------------------


def test_counted_from_starts_at_the_moment_and_keeps_bounds_hours_and_jitter() -> None:
    start = T0 + timedelta(minutes=7, seconds=3)
    plain = counted_from(spec(interval={"minutes": 30}), start)
    assert next_fire_after(plain, T0) == start
    assert next_fire_after(plain, start) == start + PERIOD
    assert list(slots_newest_first(plain, T0, start + PERIOD)) == [start + PERIOD, start]

    ended = counted_from(spec(interval={"minutes": 30}, end_at=start + PERIOD), start)
    assert next_fire_after(ended, start + PERIOD) is None

    window = ActiveHours(start=time(13, 0), end=time(14, 0), weekdays=(1, 2, 3, 4, 5, 6, 7))
    daytime = counted_from(spec(interval={"minutes": 30}, active_hours=window), start)
    assert next_fire_after(daytime, T0) == start + 2 * PERIOD  # 13:07:03, the first inside

    jittered = counted_from(spec(interval={"minutes": 30}, jitter_seconds=60), start)
    first = next_fire_after(jittered, T0)
    assert first is not None and start <= first < start + timedelta(seconds=60)
    assert first == next_fire_after(
        counted_from(spec(interval={"minutes": 30}, jitter_seconds=60), start), T0
    )


def test_counted_from_refuses_what_is_not_an_interval() -> None:
    with pytest.raises(ValueError, match="only an interval"):
        counted_from(spec(cron_expression="*/5 * * * *"), T0)


# --- where the periods count from ------------------------------------------------------------


def test_a_period_after_the_last_slots_run_finished() -> None:
    job = anchored()
    slot = T0
    finished = T0 + timedelta(minutes=47)  # it overran the period
    last = LastRun(scheduled_for=slot, finished_at=finished)
    slots = slots_from_last_run(job, slot, last, stored_at=T0 - timedelta(days=1))
    assert next_fire_after(slots, slot) == finished + PERIOD
    # Missed periods after it (the ticker was down) are its slots too, for catch-up.
    assert list(slots_newest_first(slots, slot, finished + 3 * PERIOD)) == [
        finished + 3 * PERIOD,
        finished + 2 * PERIOD,
        finished + PERIOD,
    ]


def test_a_failed_skipped_or_cancelled_run_ends_the_wait_as_a_completed_one() -> None:
    job = anchored()
    for status in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.SKIPPED, JobStatus.CANCELLED):
        run = slot_run_request(job, T0, T0)
        event = JobEvent(job=run, status=status, at=T0 + timedelta(seconds=5))
        record = LastRunRecord.of(event)
        assert record is not None and record.status is status
        assert record.finished_at == T0 + timedelta(seconds=5)


def test_a_run_whose_end_is_unknown_is_presumed_to_end_at_the_latest_it_could() -> None:
    job = anchored(timeout_seconds=600, max_retries=2, retry_backoff_seconds=30)
    # Three attempts of 600 s, and backoffs of 30 s and 60 s between them.
    assert longest_run(job) == timedelta(seconds=3 * 600 + 30 + 60)
    older = LastRun(scheduled_for=T0 - PERIOD * 3, finished_at=T0 - PERIOD * 2)
    for last in (None, older):
        assert previous_run_end(job, T0, last) == T0 + longest_run(job)
        slots = slots_from_last_run(job, T0, last, stored_at=T0 - timedelta(days=1))
        assert next_fire_after(slots, T0) == T0 + longest_run(job) + PERIOD


def test_a_record_of_a_later_slot_than_the_state_knows_counts() -> None:
    """`ticker_state` a little behind the runners' records (a failover): the newer end wins."""
    later = LastRun(scheduled_for=T0 + PERIOD, finished_at=T0 + PERIOD + timedelta(minutes=1))
    assert previous_run_end(anchored(), T0, later) == later.finished_at


def test_the_first_slot_is_start_at_or_a_period_after_the_spec_was_stored() -> None:
    stored = T0 - timedelta(minutes=5)
    first = slots_from_last_run(anchored(), None, None, stored_at=stored)
    assert next_fire_after(first, stored) == stored + PERIOD
    start = T0 + timedelta(hours=3)
    bounded = slots_from_last_run(anchored(start_at=start), None, None, stored_at=stored)
    assert next_fire_after(bounded, stored) == start
    # A start_at later than a period after the last end postpones the next run to it.
    last = LastRun(scheduled_for=T0, finished_at=T0 + timedelta(minutes=1))
    postponed = slots_from_last_run(anchored(start_at=start), T0, last, stored_at=stored)
    assert next_fire_after(postponed, T0) == start


def test_a_next_run_that_would_fall_outside_the_active_hours_comes_when_they_open() -> None:
    morning = ActiveHours(start=time(8, 0), end=time(9, 0), weekdays=(1, 2, 3, 4, 5, 6, 7))
    job = anchored(active_hours=morning, timezone="Europe/Berlin")
    slot = datetime(2026, 3, 2, 7, 20, tzinfo=UTC)  # 08:20 in Berlin
    inside = LastRun(slot, finished_at=slot + timedelta(minutes=5))
    assert next_fire_after(slots_from_last_run(job, slot, inside, slot), slot) == slot + timedelta(
        minutes=35
    )
    late = LastRun(slot, finished_at=slot + timedelta(minutes=25))  # 08:45: 09:15 is outside
    next_day = datetime(2026, 3, 3, 7, 0, tzinfo=UTC)
    assert next_fire_after(slots_from_last_run(job, slot, late, slot), slot) == next_day


def test_end_at_and_max_runs_still_end_the_schedule() -> None:
    last = LastRun(scheduled_for=T0, finished_at=T0 + timedelta(minutes=10))
    job = anchored(end_at=T0 + timedelta(minutes=39))
    assert next_fire_after(slots_from_last_run(job, T0, last, T0), T0) is None
    open_ended = slots_from_last_run(anchored(), T0, last, T0)
    assert next_fire_after(open_ended, T0, runs_left=0) is None


@given(
    timeout=st.floats(min_value=1e-3, allow_infinity=True) | st.just(math.nan),
    retries=st.integers(0, 100),
    backoff=st.floats(0, 3600),
)
def test_longest_run_is_bounded_so_the_slot_maths_stay_in_the_calendar(
    timeout: float, retries: int, backoff: float
) -> None:
    job = anchored().model_copy(
        update={
            "timeout_seconds": timeout,
            "max_retries": retries,
            "retry_backoff_seconds": backoff,
        }
    )
    longest = longest_run(job)
    assert timedelta(0) <= longest <= MAX_INTERVAL
    late = datetime(8999, 12, 31, tzinfo=UTC)
    assert next_fire_after(slots_from_last_run(job, late, None, late), late) is not None


# --- what the runner records -----------------------------------------------------------------


def test_only_the_final_event_of_a_scheduled_run_of_such_an_interval_is_recorded() -> None:
    job = anchored()
    run = slot_run_request(job, T0, T0)
    assert run.records_last_run
    completed = T0 + timedelta(minutes=3)
    final = JobEvent(job=run, status=JobStatus.COMPLETED, at=completed, completed_at=completed)
    record = LastRunRecord.of(final)
    assert record is not None
    assert (record.scheduled_job_id, record.job_id) == ("s", run.job_id)
    assert LastRun.from_json(record.model_dump_json()) == LastRun(T0, completed)

    retried = JobEvent(job=run, status=JobStatus.PENDING, attempt=2, at=completed)
    assert LastRunRecord.of(retried) is None, "a retry is not the end of the run"
    plain = slot_run_request(spec(interval={"minutes": 30}), T0, T0)
    assert not plain.records_last_run
    assert LastRunRecord.of(final.model_copy(update={"job": plain})) is None
    triggered = slot_run_request(job, T0, T0, Trigger.TRIGGERED)
    assert not triggered.records_last_run
    backfilled = slot_run_request(job, T0, T0, Trigger.BACKFILL)
    assert LastRunRecord.of(final.model_copy(update={"job": backfilled})) is None


def test_a_record_is_refused_for_a_status_that_is_not_final_or_a_bad_key() -> None:
    with pytest.raises(ValidationError, match="not a final status"):
        LastRunRecord(
            scheduled_job_id="s",
            job_id="j",
            scheduled_for=T0,
            status=JobStatus.RUNNING,
            finished_at=T0,
        )
    run = slot_run_request(anchored(), T0, T0).model_copy(update={"scheduled_job_id": "a.b"})
    with pytest.raises(ValidationError):
        LastRunRecord.of(JobEvent(job=run, status=JobStatus.COMPLETED, at=T0))
