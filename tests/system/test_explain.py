"""`explain` on a running stack (recorder, runner, a ticker on a manual clock, real servers):
one test per decision kind. Each checks the outcome and the words of the slots concerned, and
that the explained timeline's fired slots are exactly the schedule's `jobs` documents."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from pymongo.asynchronous.database import AsyncDatabase

from natscron_api.explain import Explain
from natscron_api.live_state import LiveState
from natscron_api.timeline import Explanation, Outcome, TimelineEntry
from natscron_recorder import RecorderService
from natscron_runner import RunnerService
from natscron_shared.contract import names
from natscron_shared.contract.enums import JobStatus
from natscron_shared.contract.storage import Document
from natscron_shared.contract.ticker_state import SlotState
from natscron_shared.nats import schedule_bucket
from natscron_shared.nats.schedule_bucket import put_schedules
from natscron_shared.runtime.clock import ManualClock
from natscron_shared.runtime.endpoints import Endpoints
from natscron_shared.runtime.lifecycle import Service
from natscron_shared.runtime.settings import Settings
from natscron_shared.timing.slot_fates import Fate
from tests.conftest import StartTicker
from tests.ticker.test_ticker_service import adopted, leading, schedule
from tests.waiting import eventually

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 25, 12, 0, 0, 500_000, tzinfo=UTC)
MINUTE = T0.replace(microsecond=0)
FINAL = [status.value for status in JobStatus if status.is_terminal]


def at(minutes: float) -> datetime:
    return MINUTE + timedelta(minutes=minutes)


@asynccontextmanager
async def recorder_and_runner(settings: Settings, endpoints: Endpoints) -> AsyncIterator[None]:
    services: list[Service] = [
        RecorderService(settings, endpoints),
        RunnerService(settings, endpoints),
    ]
    try:
        for service in services:
            await service.start()
        yield
    finally:
        for service in reversed(services):
            await service.stop()


async def handled_until(js: JetStreamContext, moment: datetime, *ids: str) -> None:
    """As if a ticker had handled every slot of `ids` up to `moment`, then gone."""
    bucket = await js.key_value(names.KV_TICKER_STATE)
    for scheduled_job_id in ids:
        await bucket.put(scheduled_job_id, SlotState(handled_until=moment).to_json())


async def final_runs(
    db: AsyncDatabase[Document], scheduled_job_id: str, count: int
) -> list[Document]:
    async def runs() -> list[Document]:
        query = {"scheduled_job_id": scheduled_job_id, "status": {"$in": FINAL}}
        return await db.jobs.find(query).sort("scheduled_for", 1).to_list()

    return await eventually(
        runs, lambda found: len(found) >= count, what=f"{count} final runs of {scheduled_job_id}"
    )


async def recorded(
    db: AsyncDatabase[Document], scheduled_job_id: str, kind: str, closed: bool = False
) -> Document:
    async def decision() -> Document | None:
        query: Document = {"scheduled_job_id": scheduled_job_id, "kind": kind}
        if closed:
            query["until"] = {"$ne": None}
        return await db.decisions.find_one(query)

    found = await eventually(decision, what=f"a {kind} decision about {scheduled_job_id}")
    assert found is not None
    return found


async def explained(
    nc: Client,
    db: AsyncDatabase[Document],
    clock: ManualClock,
    scheduled_job_id: str,
    start: datetime,
    end: datetime,
) -> Explanation:
    """The explanation, after checking that its fired slots are the `jobs` documents."""
    explanation = await Explain(LiveState(nc.jetstream()), db, clock).explain(
        scheduled_job_id, start, end
    )
    jobs = await db.jobs.find({"scheduled_job_id": scheduled_job_id}).to_list()
    fired = {
        (entry.run.job_id, entry.run.scheduled_for)
        for entry in explanation.slots
        if entry.run is not None
    }
    assert fired == {(job["job_id"], job["scheduled_for"]) for job in jobs}
    assert explanation.other_runs == []
    return explanation


def outcomes(explanation: Explanation) -> list[tuple[str, Outcome]]:
    return [(entry.nominal, entry.outcome) for entry in explanation.slots]


def wall(minutes: float, zone_hours: int = 0) -> str:
    return (at(minutes) + timedelta(hours=zone_hours)).replace(tzinfo=None).isoformat()


async def test_an_outage_is_explained_per_catchup_policy(
    settings: Settings,
    endpoints: Endpoints,
    start_ticker: StartTicker,
    nc: Client,
    mongo_db: AsyncDatabase[Document],
) -> None:
    """Ten minutes without a ticker: `all` fires every slot late, `latest` merges nine into
    the run of the tenth, `none` drops all ten (past the grace)."""
    js = nc.jetstream()
    grace = {"all": 300.0, "latest": 300.0, "none": 10.0}
    ids = [f"out-{policy}" for policy in grace]
    now = T0 + timedelta(seconds=30)
    await handled_until(js, now - timedelta(minutes=10), *ids)
    await put_schedules(
        js,
        [
            schedule(f"out-{p}", cron_expression="* * * * *", catchup=p, misfire_grace_seconds=g)
            for p, g in grace.items()
        ],
    )
    clock = ManualClock(now)
    async with recorder_and_runner(settings, endpoints):
        await start_ticker(clock)
        await final_runs(mongo_db, "out-all", 10)
        (newest,) = await final_runs(mongo_db, "out-latest", 1)
        await recorded(mongo_db, "out-latest", "catchup_merged")
        await recorded(mongo_db, "out-none", "catchup_dropped")

        window = (now - timedelta(minutes=10), now + timedelta(minutes=1))
        missed = [wall(-m) for m in range(9, -1, -1)]
        every = await explained(nc, mongo_db, clock, "out-all", *window)
        assert outcomes(every) == [
            *((nominal, Outcome.FIRED) for nominal in missed),
            (wall(1), Outcome.UPCOMING),
        ]
        late = [entry.run.lateness_seconds for entry in every.slots if entry.run]
        assert late == [60.0 * m + 30.5 for m in range(9, -1, -1)]

        latest = await explained(nc, mongo_db, clock, "out-latest", *window)
        assert outcomes(latest) == [
            *((nominal, Outcome.CATCHUP_MERGED) for nominal in missed[:-1]),
            (missed[-1], Outcome.FIRED),
            (wall(1), Outcome.UPCOMING),
        ]
        merged = latest.slots[0]
        assert merged.decision is not None and merged.decision.job_id == newest["job_id"]
        assert f"merged by catchup latest into job {newest['job_id']}" in merged.why

        none = await explained(nc, mongo_db, clock, "out-none", *window)
        assert outcomes(none) == [
            *((nominal, Outcome.CATCHUP_DROPPED) for nominal in missed),
            (wall(1), Outcome.UPCOMING),
        ]
        assert "dropped by catchup none" in none.slots[0].why
        assert none.counts == {Outcome.CATCHUP_DROPPED: 10, Outcome.UPCOMING: 1}


LONDON = "Europe/London"


async def test_a_dst_gap_moves_a_fixed_time_slot_and_skips_wildcard_ones(
    settings: Settings,
    endpoints: Endpoints,
    start_ticker: StartTicker,
    nc: Client,
    mongo_db: AsyncDatabase[Document],
) -> None:
    """London springs forward at 01:00 UTC on 29 March 2026: 01:00-01:59 local never
    happens. `30 1 * * *` fires at the gap's end; `*/30 * * * *` has no slot in it."""
    js = nc.jetstream()
    start, end = datetime(2026, 3, 28, 23, 45, tzinfo=UTC), datetime(2026, 3, 29, 2, 10, tzinfo=UTC)
    await handled_until(js, start, "gap-fixed", "gap-wild")
    specs = [
        schedule("gap-fixed", cron_expression="30 1 * * *", timezone=LONDON, catchup="all"),
        schedule("gap-wild", cron_expression="*/30 * * * *", timezone=LONDON, catchup="all"),
    ]
    await put_schedules(js, specs)
    clock = ManualClock(end)
    async with recorder_and_runner(settings, endpoints):
        await start_ticker(clock)
        (moved,) = await final_runs(mongo_db, "gap-fixed", 1)
        await final_runs(mongo_db, "gap-wild", 5)

        fixed = await explained(nc, mongo_db, clock, "gap-fixed", start, end)
        (entry,) = fixed.slots
        assert (entry.nominal, entry.nominal_at, entry.fate) == (
            "2026-03-29T01:30:00",
            None,
            Fate.DST_GAP_MOVED,
        )
        assert entry.outcome is Outcome.FIRED and entry.moved_by == ["dst_gap"]
        assert entry.slot_at == moved["scheduled_for"] == datetime(2026, 3, 29, 1, tzinfo=UTC)
        assert "moved from 01:30:00 to 2026-03-29T02:00:00.000+01:00 by the DST rule" in entry.why
        assert moved["moved_by"] == ["dst_gap"] and moved["nominal_at"] == entry.slot_at

        wild = await explained(nc, mongo_db, clock, "gap-wild", start, end)
        assert [(e.nominal, e.outcome, e.fate) for e in wild.slots] == [
            ("2026-03-29T00:00:00", Outcome.FIRED, Fate.FIRES),
            ("2026-03-29T00:30:00", Outcome.FIRED, Fate.FIRES),
            ("2026-03-29T01:00:00", Outcome.NOT_A_SLOT, Fate.DST_GAP_SKIPPED),
            ("2026-03-29T01:30:00", Outcome.NOT_A_SLOT, Fate.DST_GAP_SKIPPED),
            ("2026-03-29T02:00:00", Outcome.FIRED, Fate.FIRES),
            ("2026-03-29T02:30:00", Outcome.FIRED, Fate.FIRES),
            ("2026-03-29T03:00:00", Outcome.FIRED, Fate.FIRES),
        ]
        assert "does not happen in Europe/London" in wild.slots[2].why


async def test_a_dst_fold_fires_a_fixed_time_slot_once_and_wildcard_ones_twice(
    settings: Settings,
    endpoints: Endpoints,
    start_ticker: StartTicker,
    nc: Client,
    mongo_db: AsyncDatabase[Document],
) -> None:
    """London falls back at 01:00 UTC on 25 October 2026: 01:00-01:59 local happens twice."""
    js = nc.jetstream()
    start, end = (
        datetime(2026, 10, 24, 23, 45, tzinfo=UTC),
        datetime(2026, 10, 25, 2, 10, tzinfo=UTC),
    )
    await handled_until(js, start, "fold-fixed", "fold-wild")
    specs = [
        schedule("fold-fixed", cron_expression="30 1 * * *", timezone=LONDON, catchup="all"),
        schedule("fold-wild", cron_expression="*/30 * * * *", timezone=LONDON, catchup="all"),
    ]
    await put_schedules(js, specs)
    clock = ManualClock(end)
    async with recorder_and_runner(settings, endpoints):
        await start_ticker(clock)
        await final_runs(mongo_db, "fold-fixed", 1)
        await final_runs(mongo_db, "fold-wild", 5)

        fixed = await explained(nc, mongo_db, clock, "fold-fixed", start, end)
        assert [(e.nominal, e.second_pass, e.outcome, e.fate) for e in fixed.slots] == [
            ("2026-10-25T01:30:00", False, Outcome.FIRED, Fate.FIRES),
            ("2026-10-25T01:30:00", True, Outcome.NOT_A_SLOT, Fate.DST_FOLD_SKIPPED),
        ]
        assert "fires only the first pass" in fixed.slots[1].why

        wild = await explained(nc, mongo_db, clock, "fold-wild", start, end)
        assert [(e.nominal, e.second_pass, e.outcome) for e in wild.slots] == [
            ("2026-10-25T01:00:00", False, Outcome.FIRED),
            ("2026-10-25T01:30:00", False, Outcome.FIRED),
            ("2026-10-25T01:00:00", True, Outcome.FIRED),
            ("2026-10-25T01:30:00", True, Outcome.FIRED),
            ("2026-10-25T02:00:00", False, Outcome.FIRED),
        ]


async def test_slots_skipped_while_paused_carry_the_pause_and_its_note(
    settings: Settings,
    endpoints: Endpoints,
    start_ticker: StartTicker,
    nc: Client,
    mongo_db: AsyncDatabase[Document],
) -> None:
    js = nc.jetstream()
    clock = ManualClock(T0)
    async with recorder_and_runner(settings, endpoints):
        await leading(await start_ticker(clock))
        await put_schedules(js, [schedule("pausable", cron_expression="* * * * *")])
        await adopted(js, "pausable")
        await clock.move_to(at(1))
        await final_runs(mongo_db, "pausable", 1)

        bucket = await js.key_value(names.KV_SCHEDULED_JOBS)
        await schedule_bucket.pause(bucket, ["pausable"], "maintenance window", clock.now())
        await adopted(js, "pausable", active=False)
        paused_at = clock.now()
        await clock.move_to(at(3.5))
        await schedule_bucket.resume(bucket, ["pausable"])
        await adopted(js, "pausable")
        await clock.move_to(at(4))
        await final_runs(mongo_db, "pausable", 2)
        pause = await recorded(mongo_db, "pausable", "paused", closed=True)
        assert pause["note"] == "maintenance window"
        assert (pause["after"], pause["until"]) == (paused_at, at(3.5))

        explanation = await explained(nc, mongo_db, clock, "pausable", at(0.5), at(5))
        assert outcomes(explanation) == [
            (wall(1), Outcome.FIRED),
            (wall(2), Outcome.PAUSED),
            (wall(3), Outcome.PAUSED),
            (wall(4), Outcome.FIRED),
        ]
        why = explanation.slots[1].why
        since, until = (
            moment.isoformat(timespec="milliseconds") for moment in (paused_at, at(3.5))
        )
        assert why.endswith(f"skipped, paused from {since} to {until} (maintenance window)")


async def test_bounds_and_active_hours_are_explained_from_the_spec(
    settings: Settings,
    endpoints: Endpoints,
    start_ticker: StartTicker,
    nc: Client,
    mongo_db: AsyncDatabase[Document],
) -> None:
    js = nc.jetstream()
    clock = ManualClock(T0)
    bounded = schedule(
        "bounded", cron_expression="* * * * *", catchup="all", start_at=at(2), end_at=at(4)
    )
    hours = {"start": "12:02", "end": "12:04"}
    windowed = schedule("windowed", cron_expression="* * * * *", catchup="all", active_hours=hours)
    async with recorder_and_runner(settings, endpoints):
        await leading(await start_ticker(clock))
        await put_schedules(js, [bounded, windowed])
        await adopted(js, "bounded")
        await adopted(js, "windowed")
        await clock.move_to(at(5.5))
        await final_runs(mongo_db, "bounded", 3)
        await final_runs(mongo_db, "windowed", 2)

        explanation = await explained(nc, mongo_db, clock, "bounded", at(0.5), at(6))
        assert [(e.nominal, e.outcome, e.fate) for e in explanation.slots] == [
            (wall(1), Outcome.NOT_A_SLOT, Fate.BEFORE_START),
            (wall(2), Outcome.FIRED, Fate.FIRES),
            (wall(3), Outcome.FIRED, Fate.FIRES),
            (wall(4), Outcome.FIRED, Fate.FIRES),
            (wall(5), Outcome.NOT_A_SLOT, Fate.AFTER_END),
        ]
        assert explanation.slots[0].why == "2026-11-25T12:01:00.000+00:00 is before start_at"

        explanation = await explained(nc, mongo_db, clock, "windowed", at(0.5), at(6))
        assert [(e.nominal, e.fate) for e in explanation.slots] == [
            (wall(1), Fate.OUTSIDE_ACTIVE_HOURS),
            (wall(2), Fate.FIRES),
            (wall(3), Fate.FIRES),
            (wall(4), Fate.OUTSIDE_ACTIVE_HOURS),
            (wall(5), Fate.OUTSIDE_ACTIVE_HOURS),
        ]


async def test_slots_after_max_runs_name_the_last_run(
    settings: Settings,
    endpoints: Endpoints,
    start_ticker: StartTicker,
    nc: Client,
    mongo_db: AsyncDatabase[Document],
) -> None:
    js = nc.jetstream()
    clock = ManualClock(T0)
    async with recorder_and_runner(settings, endpoints):
        await leading(await start_ticker(clock))
        await put_schedules(js, [schedule("limited", cron_expression="* * * * *", max_runs=2)])
        await adopted(js, "limited")
        for minute in (1, 2):
            await clock.move_to(at(minute) + timedelta(milliseconds=500))
            await final_runs(mongo_db, "limited", minute)
        await clock.move_to(at(4.5))
        last = (await final_runs(mongo_db, "limited", 2))[-1]
        await recorded(mongo_db, "limited", "max_runs_reached")

        explanation = await explained(nc, mongo_db, clock, "limited", at(0.5), at(6))
        assert outcomes(explanation) == [
            (wall(1), Outcome.FIRED),
            (wall(2), Outcome.FIRED),
            *((wall(m), Outcome.MAX_RUNS_REACHED) for m in (3, 4, 5)),
        ]
        assert explanation.slots[2].why.endswith(f"max_runs 2 used up by job {last['job_id']}")


async def test_jittered_slots_fire_late_and_their_runs_say_so(
    settings: Settings,
    endpoints: Endpoints,
    start_ticker: StartTicker,
    nc: Client,
    mongo_db: AsyncDatabase[Document],
) -> None:
    js = nc.jetstream()
    clock = ManualClock(T0)
    job = schedule("jittered", cron_expression="* * * * *", catchup="all", jitter_seconds=30)
    async with recorder_and_runner(settings, endpoints):
        await leading(await start_ticker(clock))
        await put_schedules(js, [job])
        await adopted(js, "jittered")
        await clock.move_to(at(3.75))
        runs = await final_runs(mongo_db, "jittered", 4)  # 12:00's delay carries it past T0

        explanation = await explained(nc, mongo_db, clock, "jittered", at(-0.5), at(3.5))
        assert outcomes(explanation) == [(wall(m), Outcome.FIRED) for m in (0, 1, 2, 3)]
        for entry, run in zip(explanation.slots, runs, strict=True):
            assert entry.moved_by == ["jitter"] and run["moved_by"] == ["jitter"]
            assert run["nominal_at"] == entry.nominal_at
            assert entry.slot_at is not None and entry.nominal_at is not None
            assert timedelta(0) < entry.slot_at - entry.nominal_at < timedelta(seconds=30)
            assert (
                f"jittered {(entry.slot_at - entry.nominal_at).total_seconds():.3f} s" in entry.why
            )


async def test_a_forbid_skip_names_the_run_it_overlapped(
    settings: Settings,
    endpoints: Endpoints,
    start_ticker: StartTicker,
    nc: Client,
    mongo_db: AsyncDatabase[Document],
) -> None:
    js = nc.jetstream()
    clock = ManualClock(T0)
    job = schedule(
        "exclusive",
        cron_expression="* * * * *",
        concurrency_policy="forbid",
        params={"delay_seconds": 5},
    )
    async with recorder_and_runner(settings, endpoints):
        await leading(await start_ticker(clock))
        await put_schedules(js, [job])
        await adopted(js, "exclusive")
        await clock.move_to(at(1))

        async def running() -> Document | None:
            return await mongo_db.jobs.find_one(
                {"scheduled_job_id": "exclusive", "status": "running"}
            )

        holder = await eventually(running, what="the first run running")
        assert holder is not None
        await clock.move_to(at(2))
        skip = await recorded(mongo_db, "exclusive", "overlap_skipped")
        assert skip["cause_job_id"] == holder["job_id"]
        await final_runs(mongo_db, "exclusive", 2)

        explanation = await explained(nc, mongo_db, clock, "exclusive", at(0.5), at(2.5))
        assert outcomes(explanation) == [
            (wall(1), Outcome.FIRED),
            (wall(2), Outcome.OVERLAP_SKIPPED),
        ]
        skipped: TimelineEntry = explanation.slots[1]
        assert skipped.run is not None and skipped.run.status == "skipped"
        assert f"skipped by the overlap policy while job {holder['job_id']} ran" in skipped.why
