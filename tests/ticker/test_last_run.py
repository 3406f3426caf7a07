"""Intervals `from: last_run` through a running ticker, on a real nats-server: each run comes
a period after the previous one finished, whether it completed, failed or overran the
period (never overlapping it); a new leader learns the end of a run the old one fired; a run
whose end never comes is presumed over at the latest it could be. The ticker and the runner
share one manual clock, so a run finishes at a moment the test chooses."""

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from natscron_runner import RunnerService
from natscron_runner.scrapers.base import ScrapeContext
from natscron_runner.scrapers.registry import ScraperRegistry
from natscron_shared.contract import names
from natscron_shared.contract.job_ids import scheduled_job_run_id
from natscron_shared.contract.last_runs import LastRun, longest_run
from natscron_shared.contract.messages import ScheduleEvent, ScrapedItem
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.nats.schedule_bucket import put_schedules
from natscron_shared.runtime.clock import ManualClock
from natscron_shared.runtime.endpoints import Endpoints
from natscron_shared.runtime.settings import Settings
from tests.conftest import StartTicker
from tests.ticker.test_schedule_features import Leader
from tests.ticker.test_ticker_service import T0, JobQueue, leading, sample, schedule
from tests.waiting import eventually

PERIOD = timedelta(minutes=1)
FIRST = T0 + timedelta(seconds=9, microseconds=500_000)  # start_at: the first slot


def anchored(scheduled_job_id: str, **fields: Any) -> ScheduledJob:
    return schedule(
        scheduled_job_id,
        cron_expression=None,
        interval={"minutes": 1, "from": "last_run"},
        start_at=FIRST,
        scraper="gate",
        **fields,
    )


class Gate:
    """A scraper whose runs end when the test says: `end(job_id, ok)`."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self._endings: dict[str, asyncio.Future[bool]] = {}

    def _ending(self, job_id: str) -> "asyncio.Future[bool]":
        return self._endings.setdefault(job_id, asyncio.get_running_loop().create_future())

    def end(self, job_id: str, ok: bool) -> None:
        self._ending(job_id).set_result(ok)

    async def scrape(
        self, params: dict[str, Any], context: ScrapeContext
    ) -> AsyncIterator[ScrapedItem]:
        self.started.append(context.job_id)
        if not await self._ending(context.job_id):
            raise RuntimeError("the site is down")
        yield ScrapedItem(key=context.job_id, data={})

    async def until_started(self, count: int) -> list[str]:
        async def probe() -> list[str]:
            return list(self.started)

        return await eventually(probe, lambda got: len(got) >= count, what=f"{count} runs")


@pytest.fixture
async def runner_on(settings: Settings, endpoints: Endpoints) -> AsyncIterator[Any]:
    """Starts a runner of `Gate` runs on the test's manual clock."""
    started: list[RunnerService] = []

    async def start(clock: ManualClock, gate: Gate) -> RunnerService:
        scrapers = ScraperRegistry({"gate": gate}, load_plugins=False)
        runner = RunnerService(settings, endpoints, clock=clock, scrapers=scrapers)
        started.append(runner)
        await runner.start()
        return runner

    yield start
    for runner in started:
        await runner.stop()


async def next_run(js: JetStreamContext, scheduled_job_id: str) -> datetime | None:
    """The next run the leader announced last (None before any)."""
    subject = names.scheduled_job_event_subject(scheduled_job_id)
    try:
        message = await js.get_last_msg(names.STREAM_EVENTS, subject)
    except NotFoundError:
        return None
    return ScheduleEvent.model_validate_json(message.data or b"").next_run_at


async def announced(js: JetStreamContext, scheduled_job_id: str, when: datetime) -> None:
    async def probe() -> datetime | None:
        return await next_run(js, scheduled_job_id)

    await eventually(probe, lambda got: got == when, what=f"next run at {when}")


async def last_run(js: JetStreamContext, scheduled_job_id: str) -> LastRun:
    bucket = await js.key_value(names.KV_LAST_RUNS)

    async def probe() -> LastRun | None:
        try:
            return LastRun.from_json((await bucket.get(scheduled_job_id)).value or b"")
        except NotFoundError:
            return None

    found = await eventually(probe, what=f"the end of a run of {scheduled_job_id} in KV")
    assert found is not None
    return found


def run_id(slot: datetime) -> str:
    return scheduled_job_run_id("every-minute-after", slot)


async def test_each_run_comes_a_period_after_the_last_ended_even_overrun_or_failed(
    start_ticker: StartTicker, runner_on: Any, nc: Client
) -> None:
    js = nc.jetstream()
    clock, gate = ManualClock(T0), Gate()
    ticker = await start_ticker(clock)
    await leading(ticker)
    await runner_on(clock, gate)
    job = anchored("every-minute-after")
    await put_schedules(js, [job])
    await announced(js, job.scheduled_job_id, FIRST)

    await clock.move_to(FIRST)
    assert await gate.until_started(1) == [run_id(FIRST)]
    # While it runs the next run waits for its end: at the latest, after its longest run.
    await announced(js, job.scheduled_job_id, FIRST + longest_run(job) + PERIOD)

    # It overruns the period by far, then completes.
    overran = FIRST + 2 * PERIOD + timedelta(seconds=10)
    await clock.move_to(overran)
    gate.end(run_id(FIRST), ok=True)
    assert await last_run(js, job.scheduled_job_id) == LastRun(FIRST, overran)
    await announced(js, job.scheduled_job_id, overran + PERIOD)
    await clock.move_to(overran + PERIOD)
    assert await gate.until_started(2) == [run_id(FIRST), run_id(overran + PERIOD)]

    # The second one fails: the third still comes a period after it ended.
    failed = overran + PERIOD + timedelta(seconds=25)
    await clock.move_to(failed)
    gate.end(run_id(overran + PERIOD), ok=False)
    await announced(js, job.scheduled_job_id, failed + PERIOD)
    await clock.move_to(failed + PERIOD)
    third = run_id(failed + PERIOD)
    assert await gate.until_started(3) == [run_id(FIRST), run_id(overran + PERIOD), third]
    assert sample(ticker, "natscron_ticker_slots_fired_total") == 3


async def test_a_new_leader_fires_a_period_after_the_end_of_a_run_the_old_one_fired(
    start_ticker: StartTicker, runner_on: Any, nc: Client
) -> None:
    js = nc.jetstream()
    clock, gate = ManualClock(T0), Gate()
    first = await start_ticker(clock, ticker_id="first")
    await leading(first)
    second = await start_ticker(clock, ticker_id="second")
    await runner_on(clock, gate)
    job = anchored("every-minute-after")
    await put_schedules(js, [job])
    await announced(js, job.scheduled_job_id, FIRST)
    await clock.move_to(FIRST)
    await gate.until_started(1)
    await announced(js, job.scheduled_job_id, FIRST + longest_run(job) + PERIOD)

    await first.stop()  # its run goes on
    await leading(second)
    ended = FIRST + timedelta(seconds=40)
    await clock.move_to(ended)
    gate.end(run_id(FIRST), ok=True)
    await announced(js, job.scheduled_job_id, ended + PERIOD)
    await clock.move_to(ended + PERIOD)
    assert await gate.until_started(2) == [run_id(FIRST), run_id(ended + PERIOD)]
    assert sample(second, "natscron_ticker_slots_fired_total") == 1


async def test_a_run_that_never_ends_is_presumed_over_after_its_longest_run(
    start_ticker: StartTicker, nc: Client
) -> None:
    """No runner: the run requests are only taken off the queue, and no end ever comes."""
    js = nc.jetstream()
    clock = ManualClock(T0)
    ticker = await start_ticker(clock)
    await leading(ticker)
    job = anchored("lost", timeout_seconds=20, max_retries=1, retry_backoff_seconds=5)
    longest = timedelta(seconds=2 * 20 + 5)
    assert longest_run(job) == longest
    await put_schedules(js, [job])
    await announced(js, "lost", FIRST)
    queue = JobQueue(js)

    await clock.move_to(FIRST)
    await queue.until(1, "the first run")
    presumed = FIRST + longest + PERIOD
    await announced(js, "lost", presumed)
    await clock.move_to(presumed)
    await queue.until(2, "the run after the presumed end")
    await announced(js, "lost", presumed + longest + PERIOD)
    assert [r.scheduled_for for r in queue.requests] == [FIRST, presumed]
    assert all(r.records_last_run for r in queue.requests)


async def test_a_leader_places_the_job_again_when_its_run_ends() -> None:
    """The same, through the operations on in-memory fakes: fired, the job is due at the
    presumed end; refreshed once KV `last_runs` has its end, a period after that."""
    job = anchored("every-minute-after")
    leader = Leader(job, handled_until=T0)
    due = await leader.fire(job.scheduled_job_id, FIRST)
    assert due == FIRST + longest_run(job) + PERIOD
    assert leader.last_announced() == (due, None)
    assert [r.job_id for r in leader.publisher.requests] == [run_id(FIRST)]

    ended = FIRST + timedelta(seconds=12)
    leader.last_runs[job.scheduled_job_id] = LastRun(FIRST, ended)
    refreshed = await leader.operations.refresh(job.scheduled_job_id, leader.clock.now())
    assert refreshed == ended + PERIOD
    await leader.detached_writes()
    assert leader.last_announced() == (ended + PERIOD, None)
    # A takeover on the same states and records places it at the same slot.
    placed = leader.operations.place(job, leader.clock.now())
    assert placed == (ended + PERIOD, False)
