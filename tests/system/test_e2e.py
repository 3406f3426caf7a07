"""The whole path on real servers: KV schedule -> ticker -> runner -> recorder -> MongoDB."""

import json

import pytest
from nats.aio.client import Client
from pymongo.asynchronous.database import AsyncDatabase

from natscron_shared.contract import names
from natscron_shared.contract.enums import JobStatus, ScheduledJobStatus
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.contract.storage import Document
from natscron_shared.nats.schedule_bucket import put_schedules
from natscron_shared.runtime.endpoints import Endpoints
from natscron_shared.runtime.settings import Settings
from tests.stack import running_stack
from tests.waiting import eventually

pytestmark = pytest.mark.integration

EVERY_SECOND = ScheduledJob(
    scheduled_job_id="every-second",
    name="Every second",
    cron_expression="* * * * * *",
    scraper="noop",
    params={"items": 3},
)


async def test_schedule_runs_are_recorded_and_counted(
    settings: Settings,
    endpoints: Endpoints,
    mongo_db: AsyncDatabase[Document],
    nc: Client,
) -> None:
    async with running_stack(settings, endpoints):
        await put_schedules(nc.jetstream(), [EVERY_SECOND])

        async def completed() -> list[Document]:
            query = {"scheduled_job_id": "every-second", "status": JobStatus.COMPLETED}
            return await mongo_db.jobs.find(query).to_list()

        runs = await eventually(completed, lambda docs: len(docs) >= 3, what="3 completed runs")
        for run in runs:
            assert run["job_id"].startswith("scheduled_every-second_")
            assert run["trigger"] == "scheduled"
            assert run["properties_scraped"] == 3
            assert run["started_at"] <= run["completed_at"]

        await put_schedules(
            nc.jetstream(), [EVERY_SECOND.model_copy(update={"status": ScheduledJobStatus.PAUSED})]
        )

        async def settled() -> tuple[Document | None, int, int]:
            spec = await mongo_db.scheduled_jobs.find_one({"scheduled_job_id": "every-second"})
            open_runs = await mongo_db.jobs.count_documents(
                {"scheduled_job_id": "every-second", "status": {"$in": ["pending", "running"]}}
            )
            return spec, open_runs, len(await completed())

        spec, _, done = await eventually(
            settled,
            lambda s: (
                s[0] is not None
                and s[1] == 0
                and s[0].get("status") == ScheduledJobStatus.PAUSED
                and s[0].get("run_count") == s[2]
            ),
            what="paused, no open runs, run_count equal to completed runs",
        )
        assert spec is not None
        assert spec["last_run_status"] == JobStatus.COMPLETED
        assert spec["last_run_job_id"].startswith("scheduled_every-second_")
        assert done >= 3


async def test_trigger_runs_now_and_counts(
    settings: Settings,
    endpoints: Endpoints,
    mongo_db: AsyncDatabase[Document],
    nc: Client,
) -> None:
    paused = EVERY_SECOND.model_copy(
        update={"scheduled_job_id": "on-demand", "status": ScheduledJobStatus.PAUSED}
    )
    async with running_stack(settings, endpoints):
        await put_schedules(nc.jetstream(), [paused])
        reply = await nc.request(
            names.JOBS_TRIGGER,
            json.dumps({"job_id": "on-demand", "priority": "immediate", "force": True}).encode(),
            timeout=10,
        )
        answer = json.loads(reply.data)
        assert answer["status"] == "pending"
        assert answer["job_id"].startswith("triggered_on-demand_")

        job = await eventually(
            lambda: mongo_db.jobs.find_one({"job_id": answer["job_id"]}),
            lambda doc: doc is not None and doc["status"] == JobStatus.COMPLETED,
            what="triggered run completed",
        )
        assert job is not None
        assert job["trigger"] == "triggered"
        assert job["priority"] == "immediate"
        spec = await eventually(
            lambda: mongo_db.scheduled_jobs.find_one({"scheduled_job_id": "on-demand"}),
            lambda doc: doc is not None and doc.get("run_count") == 1,
            what="run_count 1",
        )
        assert spec is not None
        assert spec["last_run_job_id"] == answer["job_id"]


async def test_bad_trigger_input_gets_error_and_services_keep_running(
    settings: Settings,
    endpoints: Endpoints,
    mongo_db: AsyncDatabase[Document],
    nc: Client,
) -> None:
    async with running_stack(settings, endpoints):
        for body, code in [
            (b"{not json", "malformed_json"),
            (json.dumps({"scheduled_job_id": "missing"}).encode(), "unknown_scheduled_job"),
        ]:
            reply = await nc.request(names.JOBS_TRIGGER, body, timeout=10)
            assert json.loads(reply.data)["error"]["code"] == code

        reply = await nc.request(
            names.JOBS_TRIGGER, json.dumps({"scraper": "noop", "params": {}}).encode(), timeout=10
        )
        job_id = json.loads(reply.data)["job_id"]
        assert job_id.startswith("adhoc_")
        job = await eventually(
            lambda: mongo_db.jobs.find_one({"job_id": job_id}),
            lambda doc: doc is not None and doc["status"] == JobStatus.COMPLETED,
            what="ad-hoc run completed after bad input",
        )
        assert job is not None
        assert job["scheduled_job_id"] is None
