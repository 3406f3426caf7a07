"""The recorder service on real servers: NATS in, MongoDB out, bad input survived."""

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest
from nats.aio.client import Client
from pymongo.asynchronous.database import AsyncDatabase

from natscron_recorder import RecorderService
from natscron_shared.contract import names
from natscron_shared.contract.attempts import AttemptRecord
from natscron_shared.contract.enums import JobStatus, Priority, Trigger
from natscron_shared.contract.messages import (
    ItemBatch,
    JobEvent,
    RunRequest,
    ScheduleEvent,
    ScrapedItem,
)
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.contract.storage import Document
from natscron_shared.nats.schedule_bucket import put_schedules
from natscron_shared.runtime.endpoints import Endpoints
from natscron_shared.runtime.lifecycle import ServiceState
from natscron_shared.runtime.settings import Settings
from tests.stack import publish
from tests.waiting import eventually

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
SPEC = ScheduledJob(
    scheduled_job_id="hourly", name="Hourly", cron_expression="0 * * * *", scraper="noop"
)
BAD_MESSAGES = "natscron_recorder_bad_messages_total"


@pytest.fixture
async def recorder(settings: Settings, endpoints: Endpoints) -> AsyncIterator[RecorderService]:
    service = RecorderService(settings, endpoints)
    await service.start()
    yield service
    await service.stop()


def run(job_id: str) -> RunRequest:
    return RunRequest(
        job_id=job_id,
        scheduled_job_id=SPEC.scheduled_job_id,
        trigger=Trigger.SCHEDULED,
        priority=Priority.NORMAL,
        scheduled_for=T0,
        created_at=T0,
        scraper="noop",
    )


async def publish_run(nc: Client, job_id: str, items: int) -> None:
    """What a runner publishes for one successful attempt with one item batch."""
    js, job = nc.jetstream(), run(job_id)
    done = T0 + timedelta(seconds=1)
    events = [
        JobEvent(job=job, status=JobStatus.RUNNING, at=T0, runner_id="r", started_at=T0),
        JobEvent(
            job=job,
            status=JobStatus.COMPLETED,
            at=done,
            runner_id="r",
            started_at=T0,
            completed_at=done,
            duration_ms=1000,
            properties_scraped=items,
            item_batches=1,
        ),
    ]
    batch = ItemBatch(
        job_id=job_id,
        scheduled_job_id=SPEC.scheduled_job_id,
        batch=0,
        scraped_at=done,
        items=[ScrapedItem(key=f"{job_id}-{n}", data={"n": n}) for n in range(items)],
    )
    for event in events:
        await publish(js, names.job_event_subject(job_id), event, event.msg_id)
    await publish(js, names.items_subject(job_id), batch, batch.msg_id)


def fully_recorded(items: int) -> Callable[[Document | None], bool]:
    def check(job: Document | None) -> bool:
        return (
            job is not None
            and job.get("status") == JobStatus.COMPLETED
            and job.get("saved_batches") == [0]
            and job.get("properties_saved") == items
        )

    return check


async def test_events_items_and_schedules_are_recorded(
    recorder: RecorderService, nc: Client, mongo_db: AsyncDatabase[Document]
) -> None:
    assert recorder.is_ready()
    js = nc.jetstream()
    await put_schedules(js, [SPEC])
    await publish_run(nc, "job-1", items=3)
    next_run = ScheduleEvent(scheduled_job_id="hourly", next_run_at=T0 + timedelta(hours=1), at=T0)
    await publish(js, names.scheduled_job_event_subject("hourly"), next_run)

    await eventually(
        lambda: mongo_db.jobs.find_one({"job_id": "job-1"}), fully_recorded(3), what="job-1"
    )
    spec = await eventually(
        lambda: mongo_db.scheduled_jobs.find_one({"scheduled_job_id": "hourly"}),
        lambda doc: doc is not None and {"name", "last_run_job_id", "next_run_at"} <= doc.keys(),
        what="spec, history and next run",
    )
    assert spec is not None
    assert spec["name"] == "Hourly"
    assert spec["cron_expression"] == "0 * * * *"
    assert (spec["run_count"], spec["last_run_job_id"]) == (1, "job-1")
    assert spec["next_run_at"] == T0 + timedelta(hours=1)
    assert await mongo_db.items.count_documents({"last_job_id": "job-1"}) == 3
    sample = recorder.registry.get_sample_value
    assert sample("natscron_recorder_messages_total", {"kind": "job_event"}) == 2
    assert sample("natscron_recorder_runs_finished_total") == 1
    # Held until its final event, the job is written once by its events, in its final
    # state: inserted, or updated if its item batch (an upsert) created it first.
    written = [
        sample("natscron_recorder_documents_written_total", {"collection": "jobs", "kind": k}) or 0
        for k in ("insert", "update")
    ]
    assert sum(written) == 1

    kv = await js.key_value(names.KV_SCHEDULED_JOBS)
    await kv.delete("hourly")
    await eventually(
        lambda: mongo_db.scheduled_jobs.find_one({"scheduled_job_id": "hourly"}),
        lambda doc: doc is not None and doc["status"] == "inactive" and "deleted_at" in doc,
        what="deleted schedule marked inactive",
    )


async def test_bad_input_is_counted_and_skipped(
    recorder: RecorderService, nc: Client, mongo_db: AsyncDatabase[Document]
) -> None:
    js = nc.jetstream()
    await js.publish(f"{names.JOBS_EVENTS_PREFIX}.garbage", b"{not json")
    await js.publish(f"{names.ITEMS_PREFIX}.garbage", b'{"job_id": "x"}')
    too_big_for_bson = ItemBatch(
        job_id="x",
        batch=0,
        scraped_at=T0,
        items=[ScrapedItem(key="k", data={"n": 2**70})],
    )
    await publish(js, names.items_subject("x"), too_big_for_bson)
    endless = AttemptRecord(attempt=1, status=JobStatus.FAILED, completed_at=T0, duration_ms=2**70)
    await publish(
        js,
        names.job_event_subject("y"),
        JobEvent(job=run("y"), status=JobStatus.FAILED, at=T0, ended_attempt=endless),
    )
    kv = await js.key_value(names.KV_SCHEDULED_JOBS)
    await kv.put("broken", b'{"scheduled_job_id": "broken", "name": "no schedule"}')

    def bad(reason: str) -> float:
        return recorder.registry.get_sample_value(BAD_MESSAGES, {"reason": reason}) or 0.0

    async def counts() -> tuple[float, float, float]:
        return bad("malformed_json"), bad("invalid_message"), bad("unstorable")

    await eventually(counts, lambda c: c == (1.0, 2.0, 2.0), what="bad messages counted")

    await put_schedules(js, [SPEC])
    await publish_run(nc, "job-after-garbage", items=1)
    await eventually(
        lambda: mongo_db.jobs.find_one({"job_id": "job-after-garbage"}),
        fully_recorded(1),
        what="a good run after bad input",
    )
    await eventually(
        lambda: mongo_db.scheduled_jobs.find_one({"scheduled_job_id": "hourly"}),
        lambda doc: doc is not None and doc.get("name") == "Hourly",
        what="a good schedule after an invalid one",
    )
    assert await mongo_db.scheduled_jobs.find_one({"scheduled_job_id": "broken"}) is None
    assert recorder.is_ready()


async def test_a_failed_write_is_retried_until_mongodb_takes_it(
    recorder: RecorderService, nc: Client, mongo_db: AsyncDatabase[Document]
) -> None:
    await mongo_db.command("collMod", "jobs", validator={"job_id": {"$ne": "job-blocked"}})
    await publish_run(nc, "job-blocked", items=1)

    async def mongo_errors() -> float:
        return recorder.registry.get_sample_value("natscron_recorder_mongo_errors_total") or 0.0

    await eventually(mongo_errors, lambda n: n >= 1, what="a failed write counted")
    assert await mongo_db.jobs.find_one({"job_id": "job-blocked"}) is None
    [problem] = recorder.readiness_problems()
    assert problem.startswith("MongoDB unavailable since") and not recorder.is_ready()
    assert recorder.health_problems() == []  # waiting for MongoDB is no reason to restart

    await mongo_db.command("collMod", "jobs", validator={})
    await eventually(
        lambda: mongo_db.jobs.find_one({"job_id": "job-blocked"}),
        fully_recorded(1),
        what="the run recorded once MongoDB accepts it",
    )
    assert recorder.is_ready()


async def test_messages_published_while_stopped_are_recorded_on_start(
    settings: Settings, endpoints: Endpoints, nc: Client, mongo_db: AsyncDatabase[Document]
) -> None:
    await publish_run(nc, "job-early", items=2)
    service = RecorderService(settings, endpoints)
    await service.start()
    try:
        await eventually(
            lambda: mongo_db.jobs.find_one({"job_id": "job-early"}),
            fully_recorded(2),
            what="a run published before the recorder started",
        )
    finally:
        await service.stop()
    assert service.state is ServiceState.STOPPED
    assert not service.is_ready()
    await service.stop()  # idempotent
    assert service.state is ServiceState.STOPPED

    async def unsettled() -> list[int]:
        js = nc.jetstream()
        infos = [
            await js.consumer_info(names.STREAM_EVENTS, names.RECORDER_EVENTS_CONSUMER),
            await js.consumer_info(names.STREAM_ITEMS, names.RECORDER_ITEMS_CONSUMER),
        ]
        return [count for info in infos for count in (info.num_ack_pending, info.num_pending)]

    await eventually(unsettled, lambda counts: not any(counts), what="every message acked")
