"""The two metrics the dashboards and alerts need: consumer lag per lane (runner) and
finished runs per scheduled job by final status (recorder), on real servers."""

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from nats.aio.client import Client
from prometheus_client import CollectorRegistry
from pymongo.asynchronous.database import AsyncDatabase

from natscron_recorder import RecorderService
from natscron_runner import lane_lag
from natscron_runner.lane_lag import LaneLag
from natscron_shared.contract import names
from natscron_shared.contract.enums import JobStatus, Priority, ScheduledJobStatus, Trigger
from natscron_shared.contract.messages import RunRequest
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.contract.pools import DEFAULT_POOL
from natscron_shared.contract.storage import Document
from natscron_shared.nats.schedule_bucket import put_schedules
from natscron_shared.runtime.endpoints import Endpoints
from natscron_shared.runtime.settings import Settings
from tests.conftest import StartRunner
from tests.stack import running_stack
from tests.waiting import eventually

pytestmark = pytest.mark.integration

QUEUED = 3


def adhoc_request() -> RunRequest:
    return RunRequest(
        job_id=f"adhoc_lag_{uuid.uuid4().hex[:10]}",
        trigger=Trigger.ADHOC,
        priority=Priority.NORMAL,
        created_at=datetime.now(UTC),
        scraper="noop",
    )


async def test_lane_lag_counts_the_jobs_waiting_in_each_lane(
    nc: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lane_lag, "LAG_POLL_SECONDS", 0.05)
    js = nc.jetstream()
    for _ in range(QUEUED):
        request = adhoc_request()
        await js.publish(
            names.run_subject(request.pool, request.priority), request.model_dump_json().encode()
        )
    registry = CollectorRegistry()
    lag = LaneLag(registry)
    reporting = asyncio.create_task(lag.report(js, DEFAULT_POOL))
    try:

        async def pending() -> tuple[float | None, float | None]:
            return (
                registry.get_sample_value(
                    "natscron_runner_consumer_pending", {"pool": DEFAULT_POOL, "lane": "normal"}
                ),
                registry.get_sample_value(
                    "natscron_runner_consumer_pending", {"pool": DEFAULT_POOL, "lane": "immediate"}
                ),
            )

        await eventually(pending, lambda lanes: lanes == (QUEUED, 0), what="lag 3 and 0")
    finally:
        reporting.cancel()
    assert (
        registry.get_sample_value(
            "natscron_runner_consumer_ack_pending", {"pool": DEFAULT_POOL, "lane": "normal"}
        )
        == 0
    )


async def test_a_runner_reports_its_lanes_lag(start_runner: StartRunner) -> None:
    runner = await start_runner()

    async def reported() -> list[float | None]:
        return [
            runner.registry.get_sample_value(
                "natscron_runner_consumer_pending", {"pool": DEFAULT_POOL, "lane": lane}
            )
            for lane in ("immediate", "normal")
        ]

    await eventually(reported, lambda values: values == [0, 0], what="both lanes reported")


FLAKY = ScheduledJob(
    scheduled_job_id="always-fails",
    name="Always fails",
    cron_expression="* * * * * *",
    scraper="noop",
    params={"fail_attempts": 99},
)


async def test_finished_runs_are_counted_per_scheduled_job_and_status_once(
    settings: Settings, endpoints: Endpoints, nc: Client, mongo_db: AsyncDatabase[Document]
) -> None:
    async with running_stack(settings, endpoints) as services:
        recorder = services[0]
        assert isinstance(recorder, RecorderService)
        await put_schedules(nc.jetstream(), [FLAKY])

        def counted(status: JobStatus) -> float:
            labels = {"scheduled_job_id": FLAKY.scheduled_job_id, "status": status.value}
            value = recorder.registry.get_sample_value(
                "natscron_recorder_schedule_runs_total", labels
            )
            return value or 0.0

        async def failed_so_far() -> float:
            return counted(JobStatus.FAILED)

        await eventually(failed_so_far, lambda count: count >= 2, what="2 failed runs counted")
        await put_schedules(
            nc.jetstream(), [FLAKY.model_copy(update={"status": ScheduledJobStatus.PAUSED})]
        )

        async def recorded_and_counted() -> tuple[int, int, float]:
            query = {"scheduled_job_id": FLAKY.scheduled_job_id}
            failed = await mongo_db.jobs.count_documents({**query, "status": JobStatus.FAILED})
            unfinished = await mongo_db.jobs.count_documents(
                {**query, "status": {"$in": [JobStatus.PENDING, JobStatus.RUNNING]}}
            )
            return failed, unfinished, counted(JobStatus.FAILED)

        failed, _, metric = await eventually(
            recorded_and_counted,
            lambda state: state[1] == 0 and state[0] == state[2],
            what="every failed run recorded and counted once",
        )
        assert failed >= 2
        assert counted(JobStatus.COMPLETED) == 0
