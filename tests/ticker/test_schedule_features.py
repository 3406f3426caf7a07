"""start_at / end_at, interval units, jitter and max_runs: validation, the time maths as
properties (the forward and newest-first searches agree, bounds hold, jitter is a
deterministic delay that keeps slots in order), `fire()` counting runs, the recorder
storing `remaining_runs`, and a ticker on a real nats-server firing jittered slots."""

import json
import os
import subprocess
import sys
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from nats.aio.client import Client
from nats.js.errors import NotFoundError
from prometheus_client import CollectorRegistry
from pydantic import ValidationError
from pymongo.asynchronous.database import AsyncDatabase

from natscron_recorder.event_batch import EventBatchWriter
from natscron_shared.contract import names
from natscron_shared.contract.job_ids import scheduled_job_run_id
from natscron_shared.contract.last_runs import LastRun
from natscron_shared.contract.messages import ScheduleEvent
from natscron_shared.contract.models import Interval, ScheduledJob
from natscron_shared.contract.storage import Document
from natscron_shared.contract.ticker_state import SlotState
from natscron_shared.nats.schedule_bucket import put_schedules
from natscron_shared.runtime.clock import ManualClock
from natscron_shared.runtime.mongo import ensure_indexes
from natscron_shared.timing.schedule import (
    jitter_offset,
    next_fire_after,
    slots_between,
    slots_newest_first,
)
from natscron_ticker.book import ScheduleBook
from natscron_ticker.metrics import TickerMetrics
from natscron_ticker.operations import JobOperations
from natscron_ticker.state import StateTable
from tests.conftest import StartTicker
from tests.ticker.test_ticker_service import (
    JobQueue,
    adopted,
    leading,
    sample,
    schedule,
    slot_state,
)
from tests.ticker.ticker_fakes import MemoryStore, RecordingPublisher
from tests.timing.test_schedule import CRONS, ZONES, moments, spec, windows
from tests.waiting import eventually

TICK = timedelta(microseconds=1)
T0 = datetime(2026, 11, 25, 12, 0, 0, 500_000, tzinfo=UTC)

# --- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"interval": {"minutes": 5}, "interval_minutes": 5},
            "exactly one of cron_expression, interval, interval_minutes, run_at",
        ),
        ({"interval": {}}, "interval must be longer than zero"),
        ({"interval": {"hour": 1}}, "interval.hour"),
        ({"interval": {"days": 3000, "hours": 24 * 1000}}, "at most 3660 days"),
        ({"interval_minutes": 1e-9}, "interval must be longer than zero"),
        (
            {"interval": {"minutes": 1}, "jitter_seconds": 60},
            r"jitter_seconds \(60\) must be smaller than the interval \(60 s\)",
        ),
        ({"interval_minutes": 0.5, "jitter_seconds": 45}, "must be smaller than the interval"),
        (
            {
                "cron_expression": "* * * * *",
                "start_at": "2026-06-01T00:00:00Z",
                "end_at": "2026-06-01T00:00:00Z",
            },
            "end_at .* must be after start_at",
        ),
        (
            {"run_at": "2026-05-31T23:59:59Z", "start_at": "2026-06-01T00:00:00Z"},
            "run_at .* is before start_at",
        ),
        (
            {"run_at": "2026-06-01T00:00:01Z", "end_at": "2026-06-01T00:00:00+00:00"},
            "run_at .* is after end_at",
        ),
        ({"cron_expression": "* * * * *", "end_at": "9999-01-01T00:00:00Z"}, "between the years"),
        ({"cron_expression": "* * * * *", "start_at": "2026-06-01T00:00:00"}, "start_at"),
        ({"cron_expression": "* * * * *", "max_runs": 0}, "max_runs"),
        ({"cron_expression": "* * * * *", "jitter_seconds": -1}, "jitter_seconds"),
    ],
)
def test_invalid_specs_are_refused_with_a_clear_message(
    fields: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        spec(**fields)


def test_bounds_jitter_and_max_runs_are_accepted_when_consistent() -> None:
    job = spec(
        run_at="2026-06-01T00:00:00Z",
        start_at="2026-06-01T00:00:00Z",
        end_at="2026-06-02T00:00:00Z",
        jitter_seconds=7200,
        max_runs=1,
    )
    assert job.run_at == job.start_at
    assert spec(interval={"minutes": 1}, jitter_seconds=59.9).jitter_seconds == 59.9


def test_interval_units_add_up() -> None:
    assert Interval(hours=1, minutes=30).period == timedelta(minutes=90)
    assert Interval(days=1, seconds=1).period == timedelta(days=1, seconds=1)
    assert spec(interval={"seconds": 90}).interval_period == timedelta(seconds=90)
    assert spec(interval_minutes=1.5).interval_period == timedelta(seconds=90)


# --- the time maths as properties --------------------------------------------------------

INTERVALS = [
    {"seconds": 30},
    {"seconds": 45},
    {"minutes": 7},
    {"hours": 1, "minutes": 30},
    {"hours": 5},
    {"days": 1},
]
EXTRA_CRONS = ["30 59 1,2 * * *", "15 1-3 * * *"]
"""Slots a DST change brings within seconds of each other (New York, spring)."""


def featured_spec(draw: st.DrawFn, anchor: datetime) -> ScheduledJob:
    """Any kind of schedule, often bounded near `anchor`, often jittered."""
    fields: dict[str, object]
    kind = draw(st.sampled_from(["cron", "interval", "interval_minutes", "run_at"]))
    if kind == "cron":
        fields = {
            "cron_expression": draw(st.sampled_from(CRONS + EXTRA_CRONS)),
            "timezone": draw(st.sampled_from([*ZONES, "America/New_York"])),
            "active_hours": draw(st.none() | windows),
        }
        jitter = draw(st.sampled_from([0.0, 1.0, 30.0, 600.0, 7200.0]))
    elif kind == "run_at":
        fields = {"run_at": anchor + timedelta(seconds=draw(st.integers(0, 86400)))}
        jitter = draw(st.sampled_from([0.0, 60.0, 86400.0]))
    else:
        interval = draw(st.sampled_from(INTERVALS))
        period = Interval.model_validate(interval).period
        if kind == "interval":
            fields = {"interval": interval}
        else:
            fields = {"interval_minutes": period / timedelta(minutes=1)}
        jitter = period.total_seconds() * draw(st.sampled_from([0.0, 0.1, 0.5, 0.999]))
    start = draw(st.none() | st.integers(-86400, 6 * 3600).map(lambda s: timedelta(seconds=s)))
    length = draw(st.none() | st.integers(1, 2 * 86400).map(lambda s: timedelta(seconds=s)))
    start_at = None if start is None else anchor + start
    end_at = None if length is None else (start_at or anchor) + length
    try:
        return spec(**fields, start_at=start_at, end_at=end_at, jitter_seconds=jitter)
    except ValidationError:  # a cron never inside its window, a run_at out of bounds
        reject()


@st.composite
def cases(draw: st.DrawFn) -> tuple[ScheduledJob, datetime, datetime]:
    """A schedule and a span `(after, until]` of up to a day, often across its bounds."""
    anchor = draw(moments)
    job = featured_spec(draw, anchor)
    offset = timedelta(
        seconds=draw(st.integers(-18 * 3600, 12 * 3600)),
        microseconds=draw(st.sampled_from([0, 1, 999_999])),
    )
    after = anchor + offset
    span = draw(st.sampled_from([60, 3 * 3600, 86400, 86400])) + draw(st.integers(0, 600))
    return job, after, after + timedelta(seconds=span)


PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
Case = tuple[ScheduledJob, datetime, datetime]


@PROPERTY_SETTINGS
@given(cases())
def test_both_searches_walk_the_same_slots(case: Case) -> None:
    job, after, until = case
    forward = list(slots_between(job, after, until))
    assert list(slots_newest_first(job, after, until)) == forward[::-1]
    assert all(after < slot <= until for slot in forward)
    assert forward == sorted(set(forward))


@PROPERTY_SETTINGS
@given(cases())
def test_the_slot_announced_next_is_the_slot_that_fires(case: Case) -> None:
    job, after, _ = case
    announced = next_fire_after(job, after)
    if announced is None:
        assert next(slots_newest_first(job, after, after + timedelta(days=3)), None) is None
        return
    assert next(slots_newest_first(job, after, announced)) == announced
    assert next(slots_newest_first(job, after, announced - TICK), None) is None


@PROPERTY_SETTINGS
@given(cases())
def test_no_slot_lies_outside_start_at_and_end_at(case: Case) -> None:
    job, after, until = case
    slots = list(slots_between(job, after, until))
    if job.start_at is not None:
        assert all(slot >= job.start_at for slot in slots)
    if job.end_at is not None:
        assert all(slot <= job.end_at for slot in slots)
        assert next_fire_after(job, max(after, job.end_at)) is None
        late = list(slots_newest_first(job, job.end_at, job.end_at + timedelta(days=2)))
        assert late == []


@PROPERTY_SETTINGS
@given(cases())
def test_jitter_delays_each_slot_less_than_jitter_seconds_and_keeps_the_order(
    case: Case,
) -> None:
    """The jittered slots are exactly the unjittered ones, each delayed by [0, jitter), and
    never as far as the next unjittered slot."""
    job, after, until = case
    plain = job.model_copy(update={"jitter_seconds": 0.0})
    jitter = timedelta(seconds=job.jitter_seconds)
    delayed = []
    for nominal in slots_between(plain, after - jitter, until):
        fired = next_fire_after(job, nominal - TICK)
        assert fired is not None
        assert nominal <= fired < nominal + max(jitter, TICK)
        following = next_fire_after(plain, nominal)
        assert following is None or fired < following
        if after < fired <= until:
            delayed.append(fired)
    assert list(slots_between(job, after, until)) == delayed


@given(st.sampled_from(INTERVALS), moments, moments)
def test_interval_slots_count_whole_periods_from_start_at(
    interval: dict[str, int], start_at: datetime, after: datetime
) -> None:
    job = spec(interval=interval, start_at=start_at)
    period = Interval.model_validate(interval).period
    assert next_fire_after(job, start_at - TICK) == start_at
    slot = next_fire_after(job, after)
    assert slot is not None and slot >= start_at
    assert (slot - start_at) % period == timedelta(0)
    assert slot - period <= max(after, start_at - period)


@given(st.sampled_from([0.5, 1, 7, 60, 90, 1440]), moments, st.integers(1, 86400))
def test_interval_in_units_has_the_slots_of_interval_minutes(
    minutes: float, after: datetime, seconds: int
) -> None:
    until = after + timedelta(seconds=seconds)
    older = list(slots_between(spec(interval_minutes=minutes), after, until))
    assert list(slots_between(spec(interval={"minutes": minutes}), after, until)) == older
    assert list(slots_between(spec(interval={"seconds": minutes * 60}), after, until)) == older


def test_max_runs_used_up_means_no_next_run() -> None:
    job = spec(cron_expression="* * * * *", max_runs=3)
    assert next_fire_after(job, T0, runs_left=1) == next_fire_after(job, T0)
    assert next_fire_after(job, T0, runs_left=0) is None


# --- jitter: deterministic, spread, ordered across DST ------------------------------------


def test_jitter_offset_is_pinned_so_tickers_of_every_version_agree() -> None:
    """BLAKE2b-64 of "<id>|<µs since the epoch>", scaled to the limit in microseconds."""
    offset = jitter_offset("nightly-report", datetime(2026, 1, 1), timedelta(seconds=60))
    assert offset == timedelta(seconds=30, microseconds=63_893)


def test_jitter_offsets_spread_over_the_whole_range() -> None:
    limit = timedelta(seconds=60)
    offsets = [
        jitter_offset("s", datetime(2026, 1, 1) + timedelta(minutes=m), limit) for m in range(2000)
    ]
    assert all(timedelta(0) <= offset < limit for offset in offsets)
    assert min(offsets) < timedelta(seconds=1) and max(offsets) > timedelta(seconds=59)
    assert len(set(offsets)) > 1990
    other = jitter_offset("t", datetime(2026, 1, 1), limit)
    assert jitter_offset("s", datetime(2026, 1, 1), limit) != other


SLOTS_SCRIPT = """
import json, sys
from datetime import datetime
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.timing.schedule import slots_between
specs, after, until = json.loads(sys.argv[1])
print(json.dumps([
    [slot.isoformat() for slot in slots_between(
        ScheduledJob.model_validate(s), datetime.fromisoformat(after), datetime.fromisoformat(until)
    )]
    for s in specs
]))
"""


def test_every_process_computes_the_same_jittered_slots() -> None:
    """Python's own hash() is salted per process; the jitter must not be."""
    specs = [
        spec(cron_expression="*/5 * * * *", jitter_seconds=240).model_dump(mode="json"),
        spec(interval={"seconds": 90}, jitter_seconds=80, start_at=T0).model_dump(mode="json"),
    ]
    argument = json.dumps([specs, T0.isoformat(), (T0 + timedelta(hours=1)).isoformat()])
    outputs = {
        subprocess.run(
            [sys.executable, "-c", SLOTS_SCRIPT, argument],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2", "random")
    }
    assert len(outputs) == 1
    (computed,) = [json.loads(output) for output in outputs]
    hour = (T0, T0 + timedelta(hours=1))
    here = [
        [slot.isoformat() for slot in slots_between(ScheduledJob.model_validate(j), *hour)]
        for j in specs
    ]
    assert computed == here
    assert (len(here[0]), here[0][0]) == (12, "2026-11-25T12:00:18.104897+00:00")
    assert (len(here[1]), here[1][0]) == (40, "2026-11-25T12:00:42.462768+00:00")


def test_jitter_never_carries_a_slot_past_the_next_across_a_dst_gap() -> None:
    """`30 59 1,2 * * *` in New York on 8 March 2026: 01:59:30 EST and the gap slot 03:00 EDT
    are 30 s apart, so their delays stay under 30 s whatever jitter_seconds says."""
    job = spec(cron_expression="30 59 1,2 * * *", timezone="America/New_York", jitter_seconds=3000)
    night = (datetime(2026, 3, 8, 6, tzinfo=UTC), datetime(2026, 3, 8, 8, tzinfo=UTC))
    first, second = slots_between(job, *night)
    gap_ends = datetime(2026, 3, 8, 7, tzinfo=UTC)
    assert gap_ends - timedelta(seconds=30) <= first < gap_ends
    assert gap_ends <= second < gap_ends + timedelta(minutes=50)
    assert list(slots_newest_first(job, *night)) == [second, first]


def test_jitter_never_fires_after_end_at() -> None:
    end = datetime(2026, 6, 1, 12, 0, 10, tzinfo=UTC)
    job = spec(cron_expression="0 * * * *", jitter_seconds=3599, end_at=end)
    last = list(slots_between(job, end - timedelta(hours=1, seconds=1), end))[-1]
    assert datetime(2026, 6, 1, 12, tzinfo=UTC) <= last <= end
    assert next_fire_after(job, last) is None


# --- fire(): counting runs against max_runs ------------------------------------------------


class Leader:
    """One term's `JobOperations` on in-memory fakes, with detached writes run in order;
    `last_runs` plays KV `last_runs`."""

    def __init__(self, *specs: ScheduledJob, handled_until: datetime) -> None:
        self.book = ScheduleBook()
        for one in specs:
            self.book.put(one)
        self.store = MemoryStore()
        self.publisher = RecordingPublisher()
        self.registry = CollectorRegistry()
        self.clock = ManualClock(handled_until)
        self._detached: list[Coroutine[Any, Any, None]] = []
        self.last_runs: dict[str, LastRun] = {}
        states = StateTable()
        for one in specs:
            states[one.scheduled_job_id] = SlotState(handled_until=handled_until)
        self.operations = JobOperations(
            states,
            self.book,
            self.store,
            self.publisher,
            self.clock,
            TickerMetrics.on(self.registry),
            ensure_leading=lambda: None,
            detach=self._detached.append,
            last_run=self.last_runs.get,
        )

    async def fire(self, scheduled_job_id: str, now: datetime) -> datetime | None:
        await self.clock.move_to(now)
        due = (await self.operations.fire([(scheduled_job_id, now)]))[scheduled_job_id]
        await self.detached_writes()
        return due

    async def detached_writes(self) -> None:
        for write in self._detached:
            await write
        self._detached.clear()

    def last_announced(self) -> tuple[datetime | None, int | None]:
        event = self.publisher.announced[-1]
        return event.next_run_at, event.remaining_runs


SECOND = T0.replace(microsecond=0)


async def test_fire_stops_after_max_runs_and_a_changed_max_runs_counts_afresh() -> None:
    job = spec(cron_expression="*/10 * * * * *", max_runs=2)
    leader = Leader(job, handled_until=T0)

    due = await leader.fire("s", SECOND + timedelta(seconds=10))
    assert due == SECOND + timedelta(seconds=20)
    assert leader.last_announced() == (due, 1)
    assert await leader.fire("s", SECOND + timedelta(seconds=20)) is None
    assert leader.last_announced() == (None, 0)
    assert leader.store.saved["s"].fired_runs == 2 and leader.store.saved["s"].max_runs == 2

    # Used up: due again (a takeover put it back on the agenda) fires nothing.
    assert await leader.fire("s", SECOND + timedelta(seconds=30)) is None
    # Re-applied with another description: the count stays.
    leader.book.put(job.model_copy(update={"description": "re-applied"}))
    assert await leader.fire("s", SECOND + timedelta(seconds=40)) is None
    assert len(leader.publisher.requests) == 2

    # Re-applied with another max_runs: a fresh count of three.
    leader.book.put(job.model_copy(update={"max_runs": 3}))
    due = await leader.fire("s", SECOND + timedelta(seconds=50))
    assert due == SECOND + timedelta(seconds=60)
    assert leader.last_announced() == (due, 2)
    scheduled_for = [r.scheduled_for for r in leader.publisher.requests]
    assert scheduled_for == [SECOND + timedelta(seconds=s) for s in (10, 20, 50)]


async def test_catch_up_fires_the_oldest_slots_that_max_runs_allows() -> None:
    job = spec(cron_expression="*/10 * * * * *", catchup="all", max_runs=3)
    leader = Leader(job, handled_until=T0)
    assert await leader.fire("s", SECOND + timedelta(seconds=100)) is None
    scheduled_for = [r.scheduled_for for r in leader.publisher.requests]
    assert scheduled_for == [SECOND + timedelta(seconds=s) for s in (10, 20, 30)]
    skipped = {"kind": "max_runs_reached"}
    assert leader.registry.get_sample_value("natscron_ticker_slots_skipped_total", skipped) == 7
    assert leader.last_announced() == (None, 0)
    (decision,) = leader.publisher.decisions
    assert decision.kind == "max_runs_reached" and decision.until is None
    assert decision.after == SECOND + timedelta(seconds=30) and decision.slots == 7
    assert decision.job_id == scheduled_job_run_id("s", decision.after)


async def test_fire_publishes_the_jittered_slot_under_its_deterministic_job_id() -> None:
    job = spec(interval={"seconds": 10}, jitter_seconds=9.5)
    leader = Leader(job, handled_until=T0)
    slot = next_fire_after(job, T0)
    assert slot is not None
    assert await leader.fire("s", slot - TICK) == slot
    assert leader.publisher.requests == []
    following = await leader.fire("s", slot)
    (request,) = leader.publisher.requests
    assert request.scheduled_for == slot
    assert request.job_id == scheduled_job_run_id("s", slot)
    assert leader.last_announced() == (following, None)
    assert following == next_fire_after(job, slot)


# --- the recorder ---------------------------------------------------------------------------


@pytest.mark.integration
async def test_the_recorder_stores_remaining_runs_next_to_next_run_at(
    mongo_db: AsyncDatabase[Document],
) -> None:
    await ensure_indexes(mongo_db)
    writer = EventBatchWriter(mongo_db.client, mongo_db)

    def announced(minutes: int, remaining: int | None) -> ScheduleEvent:
        at = T0 + timedelta(minutes=minutes)
        return ScheduleEvent(scheduled_job_id="sj", next_run_at=at, at=at, remaining_runs=remaining)

    async def stored() -> tuple[object, object]:
        doc = await mongo_db.scheduled_jobs.find_one({"scheduled_job_id": "sj"})
        assert doc is not None
        return doc["next_run_at"], doc["remaining_runs"]

    async def recorded(*events: ScheduleEvent) -> None:
        """Recorded, then flushed: the recorder writes schedules at its flushes."""
        await writer.record([], list(events), T0)
        await writer.flush(T0)

    await recorded(announced(1, 5), announced(2, 4))
    assert await stored() == (T0 + timedelta(minutes=2), 4)
    await recorded(announced(1, 5))
    assert (await stored())[1] == 4
    await recorded(announced(3, None))
    assert (await stored())[1] is None
    assert (
        ScheduleEvent.model_validate(
            {"scheduled_job_id": "sj", "next_run_at": None, "at": T0.isoformat()}
        ).remaining_runs
        is None
    )


# --- a ticker on a real nats-server ----------------------------------------------------------


async def last_schedule_event(nc: Client, scheduled_job_id: str) -> ScheduleEvent | None:
    try:
        msg = await nc.jetstream().get_last_msg(
            names.STREAM_EVENTS, names.scheduled_job_event_subject(scheduled_job_id)
        )
    except NotFoundError:
        return None
    return ScheduleEvent.model_validate_json(msg.data or b"")


@pytest.mark.integration
async def test_a_failover_refires_the_same_jittered_instant_under_the_same_job_id(
    start_ticker: StartTicker, nc: Client
) -> None:
    js = nc.jetstream()
    clock = ManualClock(T0)
    first = await start_ticker(clock)
    await leading(first)
    job = schedule("jittery", cron_expression=None, interval={"seconds": 10}, jitter_seconds=9.5)
    await put_schedules(js, [job])
    await adopted(js, "jittery")
    slot = next_fire_after(job, T0)
    assert slot is not None and (slot - SECOND) % timedelta(seconds=10) != timedelta(0)

    async def announced() -> ScheduleEvent | None:
        return await last_schedule_event(nc, "jittery")

    event = await eventually(announced, what="the next run announced")
    assert event is not None and event.next_run_at == slot

    await clock.move_to(slot)
    queue = JobQueue(js)
    (request,) = await queue.until(1, "the jittered slot fired")
    assert request.scheduled_for == slot
    assert request.job_id == scheduled_job_run_id("jittery", slot)

    # The leader dies before its state is saved: the next one fires the same slot again,
    # under the same job id, and JetStream stores it once.
    await first.stop()
    state_bucket = await js.key_value(names.KV_TICKER_STATE)
    await state_bucket.put("jittery", SlotState(handled_until=T0).to_json())
    second = await start_ticker(clock)

    async def duplicates() -> float:
        return sample(second, "natscron_ticker_slots_duplicate_total")

    await eventually(duplicates, lambda count: count == 1, what="the slot re-fired")
    assert await queue.take() == [request]
    saved = await slot_state(js, "jittery")
    assert saved is not None and saved.last_fired_slot == slot
