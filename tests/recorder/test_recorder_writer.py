"""The recorder's batch writes against the real MongoDB-protocol server: idempotent and
order-independent under any batching, redelivery, reordering and concurrency."""

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from natscron_recorder.event_batch import EventBatchWriter
from natscron_recorder.items_batch import ItemBatchWriter
from natscron_recorder.schedule_writer import write_deletion, write_spec
from natscron_shared.contract.attempts import AttemptRecord
from natscron_shared.contract.enums import JobStatus, Priority, ScheduledJobStatus, Trigger
from natscron_shared.contract.job_stats import summary
from natscron_shared.contract.messages import (
    ItemBatch,
    JobEvent,
    RunRequest,
    ScheduleEvent,
    ScrapedItem,
)
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.contract.storage import Document
from natscron_shared.runtime.mongo import ensure_indexes
from natscron_shared.timing.active_hours import ActiveHours

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=1)
PARALLEL_PERMUTATIONS = 8
JOBS = 16


@pytest.fixture
async def db(mongo_db: AsyncDatabase[Document]) -> AsyncIterator[AsyncDatabase[Document]]:
    await ensure_indexes(mongo_db)
    yield mongo_db


async def record(
    db: AsyncDatabase[Document],
    events: list[JobEvent],
    schedule_events: list[ScheduleEvent] | None = None,
) -> int:
    """One EVENTS batch; the number of jobs it moved forward."""
    writer = EventBatchWriter(db.client, db)
    recorded = await writer.record(events, schedule_events or [], NOW)
    await writer.flush(NOW)
    return recorded.jobs_inserted + recorded.jobs_updated


async def save_items(db: AsyncDatabase[Document], *batches: ItemBatch) -> int:
    """One ITEMS batch; the number of item batches it counted on their jobs."""
    recorded = await ItemBatchWriter(db.client, db).record(list(batches))
    return recorded.batches_counted


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


FAILED_FIRST = AttemptRecord(
    attempt=1,
    status=JobStatus.FAILED,
    runner_id="runner-1",
    started_at=T0 + timedelta(seconds=1),
    completed_at=T0 + timedelta(seconds=5, microseconds=123_456),
    duration_ms=4123,
    error_type="RuntimeError",
    error_message="boom",
    traceback="Traceback (most recent call last):\nRuntimeError: boom",
)


def ended(attempt: int, status: JobStatus, at: datetime, **fields: Any) -> AttemptRecord:
    return AttemptRecord(
        attempt=attempt, status=status, runner_id=f"runner-{attempt}", completed_at=at, **fields
    )


def retried_run(job: RunRequest) -> list[JobEvent]:
    """Attempt 1 fails and is retried; attempt 2 completes. Each reports metadata."""
    started_2 = T0 + timedelta(seconds=40)
    done = started_2 + timedelta(seconds=2)
    return [
        event(job, JobStatus.PENDING, 1, T0),
        event(job, JobStatus.RUNNING, 1, T0 + timedelta(seconds=1)),
        event(
            job,
            JobStatus.PENDING,
            2,
            FAILED_FIRST.completed_at,
            error_message="boom",
            error_type="RuntimeError",
            ended_attempt=FAILED_FIRST,
            metadata={"pages": 1},
        ),
        event(job, JobStatus.RUNNING, 2, started_2),
        event(
            job,
            JobStatus.COMPLETED,
            2,
            done,
            started_at=started_2,
            duration_ms=2000,
            properties_scraped=3,
            item_batches=1,
            ended_attempt=ended(
                2, JobStatus.COMPLETED, done, started_at=started_2, duration_ms=2000
            ),
            metadata={"pages": 3, "last": {"ok": True}},
        ),
    ]


def comparable(doc: Document | None) -> Document:
    """A job document without what legitimately differs between two runs of a test."""
    assert doc is not None
    ignored = {"_id", "job_id", "scheduled_job_id", "updated_at", "revision", "count_flush"}
    return {key: value for key, value in doc.items() if key not in ignored}


def batches_of(events: list[JobEvent], rng: random.Random) -> list[list[JobEvent]]:
    """`events`, each delivered one to three times, shuffled, cut into random batches."""
    deliveries = [e for e in events for _ in range(rng.randint(1, 3))]
    rng.shuffle(deliveries)
    cuts = sorted(rng.sample(range(1, len(deliveries)), rng.randint(0, len(deliveries) - 1)))
    return [deliveries[a:b] for a, b in zip([0, *cuts], [*cuts, len(deliveries)], strict=True)]


async def test_any_batching_of_a_retried_jobs_events_ends_in_the_same_document(
    db: AsyncDatabase[Document],
) -> None:
    gate = asyncio.Semaphore(PARALLEL_PERMUTATIONS)

    async def deliver(number: int) -> None:
        events = retried_run(request(f"job-{number}", f"sj-{number}"))
        async with gate:
            for delivered in batches_of(events, random.Random(number)):
                await record(db, delivered)

    await asyncio.gather(*(deliver(n) for n in range(JOBS)))

    reference = comparable(await db.jobs.find_one({"job_id": "job-0"}))
    assert reference["status"] == JobStatus.COMPLETED
    assert reference["attempt"] == 2
    assert reference["runner_id"] == "runner-2"
    assert reference["started_at"] == T0 + timedelta(seconds=40)
    assert reference["duration_ms"] == 2000
    assert reference["error_message"] is None  # the final attempt succeeded
    assert reference["metadata"] == {"pages": 3, "last": {"ok": True}}
    first, second = reference["attempts"]
    assert first == {
        **FAILED_FIRST.model_dump(),
        "status": "failed",
        "completed_at": T0 + timedelta(seconds=5, milliseconds=123),  # as MongoDB keeps it
    }
    assert (second["attempt"], second["status"], second["error_type"]) == (2, "completed", None)
    assert second["started_at"] == T0 + timedelta(seconds=40)
    assert reference["properties_saved"] == 0
    assert reference["saved_batches"] == []
    async for doc in db.jobs.find({}):
        assert comparable(doc) == reference, doc["job_id"]
    assert await db.scheduled_jobs.distinct("run_count") == [1]
    assert await db.scheduled_jobs.count_documents({}) == JOBS
    system = await db.job_stats.find_one({"_id": "*|all"})
    assert system is not None and (system["runs"], system["completed"]) == (JOBS, JOBS)


async def test_a_terminal_status_is_final(db: AsyncDatabase[Document]) -> None:
    job = request("job-final")
    run = retried_run(job)
    for step in run:
        assert await record(db, [step]) == 1
    before = await db.jobs.find_one({"job_id": "job-final"}, {"_id": 0})

    late = [
        event(job, JobStatus.RUNNING, 3, T0 + timedelta(minutes=5)),  # redelivery after a crash
        event(job, JobStatus.FAILED, 1, T0 + timedelta(minutes=6), error_message="late"),
        run[-1],
    ]
    assert await record(db, late) == 0
    for step in late:
        assert await record(db, [step]) == 0
    assert await db.jobs.find_one({"job_id": "job-final"}, {"_id": 0}) == before


async def test_attempts_are_folded_by_number_the_latest_end_winning_the_newest_kept(
    db: AsyncDatabase[Document],
) -> None:
    job = request("job-attempts")  # max_retries 1: two attempts kept
    minute = timedelta(minutes=1)
    redone = ended(1, JobStatus.COMPLETED, T0 + 3 * minute)  # attempt 1 redone after a crash
    final = event(job, JobStatus.FAILED, 3, T0 + 9 * minute, error_message="third",
                  ended_attempt=ended(3, JobStatus.FAILED, T0 + 9 * minute,
                                      error_message="third"))  # fmt: skip
    retry_2 = event(job, JobStatus.PENDING, 2, T0 + minute, ended_attempt=FAILED_FIRST)
    retry_3 = event(job, JobStatus.PENDING, 3, T0 + 5 * minute,
                    ended_attempt=ended(2, JobStatus.FAILED, T0 + 5 * minute))  # fmt: skip
    late = event(job, JobStatus.COMPLETED, 1, redone.completed_at, ended_attempt=redone)

    assert await record(db, [final]) == 1
    assert await record(db, [retry_3, late]) == 1  # attempts only: the job is final
    assert await record(db, [retry_2, retry_3, final]) == 0  # attempt 1 is not kept

    doc = await db.jobs.find_one({"job_id": "job-attempts"})
    assert doc is not None
    assert [(a["attempt"], a["status"]) for a in doc["attempts"]] == [(2, "failed"), (3, "failed")]
    assert (doc["status"], doc["error_message"]) == ("failed", "third")

    other = request("job-redone")
    assert await record(db, [event(other, JobStatus.PENDING, 2, T0, ended_attempt=FAILED_FIRST)])
    assert await record(db, [late.model_copy(update={"job": other})]) == 1
    assert (
        await record(db, [event(other, JobStatus.PENDING, 2, T0, ended_attempt=FAILED_FIRST)]) == 0
    )
    doc = await db.jobs.find_one({"job_id": "job-redone"})
    assert doc is not None
    assert [(a["attempt"], a["status"]) for a in doc["attempts"]] == [(1, "completed")]


async def test_a_retry_waiting_for_its_backoff_keeps_when_it_may_start(
    db: AsyncDatabase[Document],
) -> None:
    job = request("job-waiting")
    due = T0 + timedelta(seconds=35)  # whole milliseconds, as MongoDB keeps them
    retry = job.model_copy(update={"attempt": 2, "not_before": due})
    waiting = event(
        retry, JobStatus.PENDING, 2, FAILED_FIRST.completed_at,
        error_type="RuntimeError", error_message="boom", ended_attempt=FAILED_FIRST,
    )  # fmt: skip

    assert await record(db, [event(job, JobStatus.PENDING, 1, T0), waiting]) == 1

    doc = await db.jobs.find_one({"job_id": "job-waiting"})
    assert doc is not None
    assert (doc["status"], doc["attempt"], doc["not_before"]) == ("pending", 2, due)
    assert (doc["error_type"], doc["error_message"]) == ("RuntimeError", "boom")


def finished(job_id: str, status: JobStatus, at: datetime, scheduled: str = "hist") -> JobEvent:
    return event(request(job_id, scheduled), status, 1, at, duration_ms=1500)


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
        done = T0 + timedelta(minutes=minute)
        events += [
            event(job, JobStatus.PENDING, 1, done - timedelta(seconds=2)),
            event(job, JobStatus.RUNNING, 1, done - timedelta(seconds=1)),
            finished(job_id, status, done),
        ]
    events += [
        event(request("run-skipped", "hist"), JobStatus.SKIPPED, 1, T0 + timedelta(hours=1)),
        event(request("run-open", "hist"), JobStatus.RUNNING, 1, T0 + timedelta(hours=1)),
        event(request("adhoc-run", None), JobStatus.COMPLETED, 1, T0 + timedelta(hours=1)),
    ]
    batches = batches_of(events, random.Random(7))
    await asyncio.gather(*(record(db, delivered) for delivered in batches))

    history = await db.scheduled_jobs.find_one(
        {"scheduled_job_id": "hist"}, {"_id": 0, "applied_flushes": 0}
    )
    assert history == {
        "scheduled_job_id": "hist",
        "run_count": 4,
        "last_run_at": T0 + timedelta(minutes=3),
        "last_run_status": "failed",
        "last_run_job_id": "run-4",
        "consecutive_failures": 2,
        "last_completed_at": T0,
        "last_failed_at": T0 + timedelta(minutes=3),
        # The run-history strip: every finished run, newest first (skipped ones ran not).
        "recent_runs": [
            {
                "job_id": job_id,
                "status": status.value,
                "duration_ms": 1500,
                "completed_at": T0 + timedelta(minutes=minute),
            }
            for minute, (job_id, status) in reversed(list(enumerate(outcomes)))
        ],
    }
    assert await db.scheduled_jobs.count_documents({}) == 1  # ad-hoc runs touch none

    await record(db, [finished("run-5", JobStatus.COMPLETED, T0 + timedelta(minutes=9))])
    history = await db.scheduled_jobs.find_one({"scheduled_job_id": "hist"})
    assert history is not None
    assert (history["run_count"], history["last_run_job_id"]) == (5, "run-5")
    assert history["consecutive_failures"] == 0


async def test_a_completion_recorded_late_recounts_the_failures_after_it(
    db: AsyncDatabase[Document],
) -> None:
    minute = timedelta(minutes=1)
    await record(db, [finished("f-3", JobStatus.FAILED, T0 + 3 * minute)])
    await record(db, [finished("f-1", JobStatus.FAILED, T0 + minute)])
    history = await db.scheduled_jobs.find_one({"scheduled_job_id": "hist"})
    assert history is not None and history["consecutive_failures"] == 2
    await record(db, [finished("c-2", JobStatus.COMPLETED, T0 + 2 * minute)])
    history = await db.scheduled_jobs.find_one({"scheduled_job_id": "hist"})
    assert history is not None
    assert (history["consecutive_failures"], history["last_run_job_id"]) == (1, "f-3")


async def test_statistics_per_scheduled_job_and_system_per_hour_and_all_time(
    db: AsyncDatabase[Document],
) -> None:
    hour = timedelta(hours=1)
    await record(
        db,
        [
            finished("a", JobStatus.COMPLETED, T0, "s1"),
            finished("b", JobStatus.FAILED, T0 + timedelta(minutes=5), "s1"),
            finished("c", JobStatus.COMPLETED, T0 + hour, "s1"),
            finished("d", JobStatus.COMPLETED, T0, "s2"),
        ],
    )
    await save_items(db, batch("a", 0, ["x", "y"], scheduled="s1"))
    s1 = await db.job_stats.find_one({"_id": "s1|all"})
    s1_hour = await db.job_stats.find_one({"_id": "s1|2026-11-23T10"})
    system = await db.job_stats.find_one({"_id": "*|all"})
    assert s1 is not None and s1_hour is not None and system is not None
    assert summary(s1) == {
        "runs": 3,
        "completed": 2,
        "failed": 1,
        "cancelled": 0,
        "skipped": 0,
        "success_rate": 2 / 3,
        "duration_ms_mean": 1500.0,
        "duration_ms_min": 1500,
        "duration_ms_max": 1500,
        "duration_ms_p95": 1500,  # the sketch reads within 1%, clamped to min..max
        "items_scraped": 0,
        "items_saved": 2,
    }
    assert (s1_hour["runs"], s1_hour["failed"], summary(system)["runs"]) == (2, 1, 4)


def batch(
    job_id: str, number: int, keys: list[str], at: datetime = T0, scheduled: str = "sj"
) -> ItemBatch:
    return ItemBatch(
        job_id=job_id,
        scheduled_job_id=scheduled,
        batch=number,
        scraped_at=at,
        items=[ScrapedItem(key=key, data={"key": key, "job": job_id}) for key in keys],
    )


async def test_redelivered_items_are_counted_once(db: AsyncDatabase[Document]) -> None:
    first, second = batch("job-items", 0, ["a", "b", "c"]), batch("job-items", 1, ["d", "e"])
    assert await save_items(db, first) == 1  # before any event of its job
    job = await db.jobs.find_one({"job_id": "job-items"})
    assert job is not None
    assert "status" not in job

    assert await record(db, [event(request("job-items"), JobStatus.RUNNING, 1, T0)]) == 1
    assert await save_items(db, second, first, second) == 1
    assert await save_items(db, first) == 0

    job = await db.jobs.find_one({"job_id": "job-items"})
    assert job is not None
    assert job["status"] == JobStatus.RUNNING
    assert job["properties_saved"] == 5
    assert sorted(job["saved_batches"]) == [0, 1]
    assert await db.items.count_documents({}) == 5
    stats = await db.job_stats.find_one({"_id": "sj|all"})
    assert stats is not None and stats["items_saved"] == 5


async def test_an_older_batch_does_not_overwrite_newer_item_data(
    db: AsyncDatabase[Document],
) -> None:
    old, new = batch("job-old", 0, ["k"], T0), batch("job-new", 0, ["k"], T0 + timedelta(hours=1))
    await save_items(db, old)
    await save_items(db, new, old)
    await save_items(db, old)  # redelivered late

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
    job_ids = [f"race-{n}" for n in range(30)]
    await asyncio.gather(
        *(
            write
            for job_id in job_ids
            for write in (
                save_items(db, batch(job_id, 0, [f"{job_id}-x"])),
                record(db, [event(request(job_id), JobStatus.PENDING, 1, T0)]),
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
    await record(db, [], [older, newer])
    await record(db, [], [older])

    doc = await db.scheduled_jobs.find_one({"scheduled_job_id": "sj"})
    assert doc is not None
    assert (doc["next_run_at"], doc["next_run_computed_at"]) == (T0 + timedelta(hours=2), T0)

    done = ScheduleEvent(scheduled_job_id="sj", next_run_at=None, at=T0 + timedelta(hours=3))
    await record(db, [], [done])
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
    await record(db, [event(request("run-1"), JobStatus.COMPLETED, 1, T0)])
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
