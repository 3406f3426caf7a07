"""The recorder's writes against the real MongoDB-protocol server: idempotent and
order-independent under redelivery, reordering and concurrency."""

import asyncio
import itertools
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from natscron_recorder.history import consecutive_failures
from natscron_recorder.indexes import ensure_indexes
from natscron_recorder.items_writer import write_item_batch
from natscron_recorder.job_writer import record_job_event
from natscron_recorder.mongo import Document
from natscron_recorder.schedule_writer import write_deletion, write_schedule_event, write_spec
from natscron_shared.enums import JobStatus, Priority, ScheduledJobStatus, Trigger
from natscron_shared.messages import ItemBatch, JobEvent, RunRequest, ScheduleEvent, ScrapedItem
from natscron_shared.models import ActiveHours, ScheduledJob

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=1)
PARALLEL_PERMUTATIONS = 8


@pytest.fixture
async def db(mongo_db: AsyncDatabase[Document]) -> AsyncIterator[AsyncDatabase[Document]]:
    await ensure_indexes(mongo_db)
    yield mongo_db


def request(job_id: str, scheduled_job_id: str | None = "sj") -> RunRequest:
    return RunRequest(
        job_id=job_id,
        scheduled_job_id=scheduled_job_id,
        trigger=Trigger.SCHEDULED if scheduled_job_id else Trigger.ADHOC,
        priority=Priority.NORMAL,
        scheduled_for=T0,
        created_at=T0,
        scraper="noop",
        params={"items": 3},
        max_retries=1,
    )


def event(
    job: RunRequest, status: JobStatus, attempt: int, at: datetime, **fields: Any
) -> JobEvent:
    if status is not JobStatus.PENDING:
        fields.setdefault("runner_id", f"runner-{attempt}")
        fields.setdefault("started_at", at)
    if status.is_terminal:
        fields.setdefault("completed_at", at)
    return JobEvent(job=job, status=status, attempt=attempt, at=at, **fields)


def retried_run(job: RunRequest) -> list[JobEvent]:
    """Attempt 1 fails and is retried; attempt 2 completes."""
    started_2 = T0 + timedelta(seconds=40)
    return [
        event(job, JobStatus.PENDING, 1, T0),
        event(job, JobStatus.RUNNING, 1, T0 + timedelta(seconds=1)),
        event(
            job,
            JobStatus.PENDING,
            2,
            T0 + timedelta(seconds=5),
            error_message="boom",
            error_type="RuntimeError",
        ),
        event(job, JobStatus.RUNNING, 2, started_2),
        event(
            job,
            JobStatus.COMPLETED,
            2,
            started_2 + timedelta(seconds=2),
            started_at=started_2,
            duration_ms=2000,
            properties_scraped=3,
            item_batches=1,
        ),
    ]


def comparable(doc: Document | None) -> Document:
    """A job document without what legitimately differs between two runs of a test."""
    assert doc is not None
    ignored = {"_id", "job_id", "scheduled_job_id", "updated_at"}
    return {key: value for key, value in doc.items() if key not in ignored}


async def test_every_order_of_a_retried_jobs_events_ends_in_the_same_document(
    db: AsyncDatabase[Document],
) -> None:
    permutations = list(itertools.permutations(range(5)))
    assert len(permutations) == 120
    gate = asyncio.Semaphore(PARALLEL_PERMUTATIONS)

    async def deliver(number: int, order: tuple[int, ...]) -> None:
        events = retried_run(request(f"job-{number}", f"sj-{number}"))
        async with gate:
            for index in order + order:  # every event delivered twice
                await record_job_event(db, events[index], NOW)

    await asyncio.gather(*(deliver(n, order) for n, order in enumerate(permutations)))

    reference = comparable(await db.jobs.find_one({"job_id": "job-0"}))
    assert reference["status"] == JobStatus.COMPLETED
    assert reference["attempt"] == 2
    assert reference["runner_id"] == "runner-2"
    assert reference["started_at"] == T0 + timedelta(seconds=40)
    assert reference["duration_ms"] == 2000
    assert reference["error_message"] is None  # the final attempt succeeded
    assert reference["properties_saved"] == 0
    assert reference["saved_batches"] == []
    async for doc in db.jobs.find({}):
        assert comparable(doc) == reference, doc["job_id"]
    counts = await db.scheduled_jobs.distinct("run_count")
    assert counts == [1]
    assert await db.scheduled_jobs.count_documents({}) == 120


async def test_a_terminal_status_is_final(db: AsyncDatabase[Document]) -> None:
    job = request("job-final")
    run = retried_run(job)
    for step in run:
        assert await record_job_event(db, step, NOW)
    before = await db.jobs.find_one({"job_id": "job-final"}, {"_id": 0})

    late = [
        event(job, JobStatus.RUNNING, 3, T0 + timedelta(minutes=5)),  # redelivery after a crash
        event(job, JobStatus.FAILED, 1, T0 + timedelta(minutes=6), error_message="late"),
        run[-1],
    ]
    for step in late:
        assert not await record_job_event(db, step, NOW + timedelta(hours=1))
    assert await db.jobs.find_one({"job_id": "job-final"}, {"_id": 0}) == before


async def test_run_history_counts_each_finished_run_once(db: AsyncDatabase[Document]) -> None:
    outcomes = [
        ("run-1", JobStatus.COMPLETED),
        ("run-2", JobStatus.FAILED),
        ("run-3", JobStatus.CANCELLED),
        ("run-4", JobStatus.FAILED),
    ]
    events: list[JobEvent] = []
    for minute, (job_id, status) in enumerate(outcomes):
        job = request(job_id, "hist")
        finished = T0 + timedelta(minutes=minute)
        events += [
            event(job, JobStatus.PENDING, 1, finished - timedelta(seconds=2)),
            event(job, JobStatus.RUNNING, 1, finished - timedelta(seconds=1)),
            event(job, status, 1, finished),
        ]
    skipped = request("run-skipped", "hist")
    events += [
        event(skipped, JobStatus.SKIPPED, 1, T0 + timedelta(hours=1)),
        event(request("run-open", "hist"), JobStatus.RUNNING, 1, T0 + timedelta(hours=1)),
        event(request("adhoc-run", None), JobStatus.COMPLETED, 1, T0 + timedelta(hours=1)),
    ]
    deliveries = events * 3
    random.Random(7).shuffle(deliveries)
    await asyncio.gather(*(record_job_event(db, step, NOW) for step in deliveries))

    history = await db.scheduled_jobs.find_one({"scheduled_job_id": "hist"}, {"_id": 0})
    assert history == {
        "scheduled_job_id": "hist",
        "run_count": 4,
        "last_run_at": T0 + timedelta(minutes=3),
        "last_run_status": "failed",
        "last_run_job_id": "run-4",
        "consecutive_failures": 2,
    }
    assert await db.scheduled_jobs.count_documents({}) == 1  # ad-hoc runs touch none

    later = request("run-5", "hist")
    await record_job_event(db, event(later, JobStatus.COMPLETED, 1, T0 + timedelta(minutes=9)), NOW)
    history = await db.scheduled_jobs.find_one({"scheduled_job_id": "hist"})
    assert history is not None
    assert (history["run_count"], history["last_run_job_id"]) == (5, "run-5")
    assert history["consecutive_failures"] == 0


def test_consecutive_failures_stop_at_the_latest_completed_run() -> None:
    assert consecutive_failures(["failed", "cancelled", "failed", "completed", "failed"]) == 2
    assert consecutive_failures(["completed", "failed"]) == 0
    assert consecutive_failures(["failed", "failed"]) == 2


def batch(job_id: str, number: int, keys: list[str], at: datetime = T0) -> ItemBatch:
    return ItemBatch(
        job_id=job_id,
        scheduled_job_id="sj",
        batch=number,
        scraped_at=at,
        items=[ScrapedItem(key=key, data={"key": key, "job": job_id}) for key in keys],
    )


async def test_redelivered_items_are_counted_once(db: AsyncDatabase[Document]) -> None:
    first, second = batch("job-items", 0, ["a", "b", "c"]), batch("job-items", 1, ["d", "e"])
    assert await write_item_batch(db, first)  # before any event of its job
    job = await db.jobs.find_one({"job_id": "job-items"})
    assert job is not None
    assert "status" not in job

    assert await record_job_event(db, event(request("job-items"), JobStatus.RUNNING, 1, T0), NOW)
    assert await write_item_batch(db, second)
    assert not await write_item_batch(db, first)
    assert not await write_item_batch(db, second)

    job = await db.jobs.find_one({"job_id": "job-items"})
    assert job is not None
    assert job["status"] == JobStatus.RUNNING
    assert job["properties_saved"] == 5
    assert sorted(job["saved_batches"]) == [0, 1]
    assert await db.items.count_documents({}) == 5


async def test_an_older_batch_does_not_overwrite_newer_item_data(
    db: AsyncDatabase[Document],
) -> None:
    old, new = batch("job-old", 0, ["k"], T0), batch("job-new", 0, ["k"], T0 + timedelta(hours=1))
    await write_item_batch(db, old)
    await write_item_batch(db, new)
    await write_item_batch(db, old)  # redelivered late

    item = await db.items.find_one({"key": "k"}, {"_id": 0})
    assert item == {
        "key": "k",
        "data": {"key": "k", "job": "job-new"},
        "scheduled_job_id": "sj",
        "last_job_id": "job-new",
        "last_seen_at": T0 + timedelta(hours=1),
        "first_seen_at": T0,
        "first_job_id": "job-old",
    }


async def test_items_and_events_racing_to_create_a_job_both_land(
    db: AsyncDatabase[Document],
) -> None:
    """On MongoDB two upserts can both try the insert (see guarded.py); SecantusDB
    serialises writes, so there this only checks that concurrent writers compose."""
    job_ids = [f"race-{n}" for n in range(30)]
    await asyncio.gather(
        *(
            write
            for job_id in job_ids
            for write in (
                write_item_batch(db, batch(job_id, 0, [f"{job_id}-x"])),
                record_job_event(db, event(request(job_id), JobStatus.PENDING, 1, T0), NOW),
            )
        )
    )
    async for job in db.jobs.find({"job_id": {"$in": job_ids}}):
        assert (job["status"], job["properties_saved"], job["saved_batches"]) == ("pending", 1, [0])
    assert await db.jobs.count_documents({}) == 30


async def test_the_newest_next_run_wins(db: AsyncDatabase[Document]) -> None:
    newer = ScheduleEvent(scheduled_job_id="sj", next_run_at=T0 + timedelta(hours=2), at=T0)
    older = ScheduleEvent(
        scheduled_job_id="sj", next_run_at=T0 + timedelta(hours=1), at=T0 - timedelta(minutes=1)
    )
    assert await write_schedule_event(db, newer)
    assert not await write_schedule_event(db, older)
    assert not await write_schedule_event(db, newer)

    doc = await db.scheduled_jobs.find_one({"scheduled_job_id": "sj"})
    assert doc is not None
    assert (doc["next_run_at"], doc["next_run_computed_at"]) == (T0 + timedelta(hours=2), T0)

    done = ScheduleEvent(scheduled_job_id="sj", next_run_at=None, at=T0 + timedelta(hours=3))
    assert await write_schedule_event(db, done)
    doc = await db.scheduled_jobs.find_one({"scheduled_job_id": "sj"})
    assert doc is not None
    assert doc["next_run_at"] is None


async def test_the_spec_mirror_keeps_the_newest_revision_and_the_history(
    db: AsyncDatabase[Document],
) -> None:
    spec = ScheduledJob(
        scheduled_job_id="sj",
        name="Nightly",
        cron_expression="0 2 * * *",
        scraper="noop",
        active_hours=ActiveHours(start=time(1), end=time(5), weekdays=(1, 2)),
    )
    await record_job_event(db, event(request("run-1"), JobStatus.COMPLETED, 1, T0), NOW)
    assert await write_spec(db, spec, revision=5, now=NOW)
    assert not await write_spec(db, spec.model_copy(update={"name": "Stale"}), 4, NOW)

    doc = await db.scheduled_jobs.find_one({"scheduled_job_id": "sj"})
    assert doc is not None
    assert doc["name"] == "Nightly"
    assert doc["active_hours"] == {"start": "01:00:00", "end": "05:00:00", "weekdays": [1, 2]}
    assert (doc["kv_revision"], doc["created_at"], doc["run_count"]) == (5, NOW, 1)

    assert await write_deletion(db, "sj", revision=6, now=NOW)
    assert not await write_spec(db, spec, revision=5, now=NOW)
    doc = await db.scheduled_jobs.find_one({"scheduled_job_id": "sj"})
    assert doc is not None
    assert (doc["status"], doc["deleted_at"]) == ("inactive", NOW)

    assert await write_spec(
        db, spec.model_copy(update={"status": ScheduledJobStatus.PAUSED}), 7, NOW
    )
    doc = await db.scheduled_jobs.find_one({"scheduled_job_id": "sj"})
    assert doc is not None
    assert doc["status"] == "paused"
    assert "deleted_at" not in doc
    assert doc["run_count"] == 1
