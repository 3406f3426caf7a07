"""Progress acks on a real nats-server: a job longer than the lanes' ack wait is renewed,
not redelivered; the beats end with the job; a stall and an overrun are told apart."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from nats.aio.client import Client

from natscron.provisioning.provision import provision
from natscron_runner import RunnerService
from natscron_runner.progress import OVERRUN_GRACE_SECONDS
from natscron_shared.nats.jetstream_layout import RUNNER_ACK_WAIT_SECONDS, jetstream_layout
from natscron_shared.runtime.clock import ManualClock
from natscron_shared.runtime.endpoints import Endpoints
from natscron_shared.runtime.settings import Settings
from tests.conftest import LEASE_TTL_SECONDS, StartRunner
from tests.runner.test_runner_service import (
    Observer,
    jobs_queue_empty,
    observer,
    run_request,
    sample,
    submit,
)
from tests.waiting import eventually

pytestmark = pytest.mark.integration

__all__ = ["observer"]

SHORT_ACK_WAIT_SECONDS = 3.0
PROGRESS = "natscron_runner_progress_acks_total"


def progress_tasks(job_id: str) -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == f"runner-progress-{job_id}"]


async def test_a_job_longer_than_the_ack_wait_runs_once_and_its_beats_end_with_it(
    nc: Client, observer: Observer, start_runner: StartRunner
) -> None:
    layout = jetstream_layout(1, LEASE_TTL_SECONDS, runner_ack_wait_seconds=SHORT_ACK_WAIT_SECONDS)
    await provision(nc.jetstream(), layout)
    runners = [await start_runner(runner_id=f"runner-{n}") for n in (1, 2)]
    job = await submit(nc, run_request(params={"delay_seconds": 3 * SHORT_ACK_WAIT_SECONDS}))
    await eventually(lambda: _steps(observer, job), what="job running")
    assert progress_tasks(job), "no progress acks while the job runs"

    await observer.until_finished(job, within=30)
    await jobs_queue_empty(nc)

    # Renewed every second, by the consumers' ack wait (the runners' own setting says 10 s,
    # a third of which would be too late): else the idle runner would have run it again.
    assert observer.steps(job) == [("running", 1), ("completed", 1)]
    assert sum(sample(r, "natscron_runner_redelivered_total") for r in runners) == 0
    assert sum(sample(r, PROGRESS, outcome="sent") for r in runners) >= 1
    assert progress_tasks(job) == []


async def test_a_stalled_beat_is_counted_late_and_still_renews(
    settings: Settings, endpoints: Endpoints, nc: Client, observer: Observer
) -> None:
    clock = ManualClock(datetime.now(UTC))
    quick_stop = settings.model_copy(update={"shutdown_grace_seconds": 0.1})
    runner = RunnerService(quick_stop, endpoints, clock=clock)
    await runner.start()
    try:
        job = await submit(nc, run_request(params={"delay_seconds": 30}))
        await eventually(lambda: _steps(observer, job), what="job running")
        await clock.advance(timedelta(seconds=RUNNER_ACK_WAIT_SECONDS + 1))
        await eventually(
            lambda: _sample(runner, "sent"), lambda sent: sent >= 1, within=5, what="renewed"
        )
        assert sample(runner, PROGRESS, outcome="late") == 1
        assert sample(runner, PROGRESS, outcome="overrun") == 0
    finally:
        await runner.stop()


async def test_a_job_past_its_timeout_and_the_grace_lets_its_message_go(
    settings: Settings, endpoints: Endpoints, nc: Client, observer: Observer
) -> None:
    clock = ManualClock(datetime.now(UTC))
    quick_stop = settings.model_copy(update={"shutdown_grace_seconds": 0.1})
    runner = RunnerService(quick_stop, endpoints, clock=clock)
    await runner.start()
    try:
        # The scrape sleeps on the event loop's time, which the manual clock leaves alone:
        # to the beat it is a job that outlived its timeout without stopping.
        request = run_request(params={"delay_seconds": 30}, timeout_seconds=60)
        job = await submit(nc, request)
        await eventually(lambda: _steps(observer, job), what="job running")
        await clock.advance(timedelta(seconds=60 + OVERRUN_GRACE_SECONDS))
        await eventually(
            lambda: _sample(runner, "overrun"), lambda n: n == 1, within=5, what="overrun"
        )
        await eventually(
            lambda: _live_beats(job), lambda left: not left, within=5, what="beats end"
        )
        assert observer.steps(job) == [("running", 1)], "the job itself goes on"
        assert sample(runner, PROGRESS, outcome="sent") == 0
    finally:
        await runner.stop()


async def _steps(observer: Observer, job_id: str) -> list[tuple[str, int]]:
    return observer.steps(job_id)


async def _sample(runner: RunnerService, outcome: str) -> float:
    return sample(runner, PROGRESS, outcome=outcome)


async def _live_beats(job_id: str) -> list[asyncio.Task[object]]:
    return progress_tasks(job_id)
