"""Property: any batching, order and duplication of a set of jobs' events, held for any
time, flushed at any moments, by one recorder or two, yields the same `jobs` documents
(their attempts and metadata included), run history and statistics documents as recording
them one at a time."""

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest
from nats.aio.msg import Msg
from pymongo.asynchronous.database import AsyncDatabase

from natscron_recorder.event_batch import EventBatchWriter
from natscron_recorder.hold import EventHold
from natscron_shared.contract.attempts import AttemptRecord
from natscron_shared.contract.enums import JobStatus, Priority, Trigger
from natscron_shared.contract.messages import JobEvent, RunRequest
from natscron_shared.contract.run_history import HISTORY_FIELDS
from natscron_shared.contract.storage import Document
from natscron_shared.runtime.mongo import ensure_indexes

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=3)
EXAMPLES = 8
HOLD_SECONDS = 2.0
SCHEDULES = ("a", "b", "c")


def ended(
    attempt: int, status: JobStatus, started: datetime, at: datetime, failed: bool
) -> AttemptRecord:
    return AttemptRecord(
        attempt=attempt,
        status=status,
        runner_id=f"r{attempt}",
        started_at=started,
        completed_at=at,
        duration_ms=round((at - started).total_seconds() * 1000),
        error_type="RuntimeError" if failed else None,
        error_message=f"boom {attempt}" if failed else None,
        traceback=f"Traceback (most recent call last):\nRuntimeError: boom {attempt}"
        if failed
        else None,
    )


def job_events(rng: random.Random, number: int) -> list[JobEvent]:
    """One job's events: pending, then attempts that fail and retry, ending in some state.
    Each event ending an attempt carries its record and metadata; now and then a failed
    attempt is redone (its runner died before acking) and completes: two records of one
    attempt. (The retry it had published would end the job a second time, which no order
    makes the same document: the first terminal event recorded is final.)"""
    created = T0 + timedelta(seconds=rng.randint(0, 7200), microseconds=rng.randint(0, 999_999))
    request = RunRequest(
        job_id=f"job-{number}",
        scheduled_job_id=rng.choice([*SCHEDULES, None]),
        trigger=Trigger.SCHEDULED,
        priority=Priority.NORMAL,
        scheduled_for=created,
        created_at=created,
        scraper="noop",
        max_retries=2,
    )
    events = [JobEvent(job=request, status=JobStatus.PENDING, attempt=1, at=created)]
    if rng.random() < 0.1:
        return [*events, JobEvent(job=request, status=JobStatus.SKIPPED, attempt=1, at=created)]
    at = created
    for attempt in range(1, 4):
        at += timedelta(seconds=rng.randint(1, 900))
        started = at
        events.append(
            JobEvent(job=request, status=JobStatus.RUNNING, attempt=attempt, at=at,
                     runner_id=f"r{attempt}", started_at=started)
        )  # fmt: skip
        if rng.random() < 0.1:
            return events  # still running
        at += timedelta(milliseconds=rng.randint(5, 200_000), microseconds=rng.randint(0, 999))
        outcome = rng.choice([JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED])
        if outcome is JobStatus.FAILED and attempt < 3 and rng.random() < 0.8:
            events.append(
                JobEvent(job=request, status=JobStatus.PENDING, attempt=attempt + 1, at=at,
                         error_message="boom", error_type="RuntimeError",
                         ended_attempt=ended(attempt, JobStatus.FAILED, started, at, True),
                         metadata={"attempt": attempt, "pages": rng.randint(0, 9)})
            )  # fmt: skip
            if rng.random() < 0.2:
                redone = at + timedelta(seconds=61)
                events.append(
                    JobEvent(job=request, status=JobStatus.COMPLETED, attempt=attempt,
                             at=redone, runner_id=f"r{attempt}", started_at=started,
                             completed_at=redone, duration_ms=61_000,
                             ended_attempt=ended(attempt, JobStatus.COMPLETED, started,
                                                 redone, False))
                )  # fmt: skip
                return events  # its retry would end the job a second time: out of scope
            continue
        duration = round((at - started).total_seconds() * 1000)
        failed = outcome is JobStatus.FAILED
        events.append(
            JobEvent(job=request, status=outcome, attempt=attempt, at=at, runner_id=f"r{attempt}",
                     started_at=started, completed_at=at, duration_ms=duration,
                     properties_scraped=rng.randint(0, 50),
                     ended_attempt=ended(attempt, outcome, started, at, failed),
                     metadata={"attempt": attempt, "nested": {"ok": not failed}})
        )  # fmt: skip
        return events
    return events


def deliveries(rng: random.Random, events: list[JobEvent]) -> list[list[JobEvent]]:
    delivered = [e for e in events for _ in range(rng.choice([1, 1, 2, 3]))]
    rng.shuffle(delivered)
    batches: list[list[JobEvent]] = []
    while delivered:
        size = rng.randint(1, 40)
        batches.append(delivered[:size])
        delivered = delivered[size:]
    return batches


async def snapshot(db: AsyncDatabase[Document]) -> dict[str, list[Document]]:
    history = {"_id": 0, "scheduled_job_id": 1, **dict.fromkeys(HISTORY_FIELDS, 1)}
    return {
        "jobs": await db.jobs.find({}, WRITER_OWN).sort("job_id").to_list(),
        "history": await db.scheduled_jobs.find({}, history).sort("scheduled_job_id").to_list(),
        "stats": await db.job_stats.find({}, {"applied_flushes": 0}).sort("_id").to_list(),
    }


WRITER_OWN = {"_id": 0, "updated_at": 0, "revision": 0, "count_flush": 0}
"""What differs with the writer and how often it wrote: its clock, flush ids, revisions."""


async def drain(
    writer: EventBatchWriter, batches: list[list[JobEvent]], rng: random.Random
) -> None:
    """As the recorder does: each batch through the hold (messages stand-ins, time passing
    a random 0-2 hold times per batch), what it lets go written, a flush now and then."""
    hold = EventHold(HOLD_SECONDS)
    clock = NOW
    for batch in batches:
        clock += timedelta(seconds=rng.uniform(0, 2 * HOLD_SECONDS))
        due = hold.take([(cast(Msg, object()), event) for event in batch], clock, idle=False)
        await writer.record([event for _, event in due], [], NOW)
        if rng.random() < 0.3:
            await writer.flush(NOW)
    rest = hold.take([], clock + timedelta(seconds=HOLD_SECONDS), idle=True)
    assert not len(hold)
    await writer.record([event for _, event in rest], [], NOW)
    await writer.flush(NOW)


@pytest.fixture
async def two_dbs(
    mongo_db: AsyncDatabase[Document],
) -> AsyncIterator[tuple[AsyncDatabase[Document], AsyncDatabase[Document]]]:
    other = mongo_db.client.get_database(
        f"t_{uuid.uuid4().hex[:12]}", write_concern=mongo_db.write_concern
    )
    yield mongo_db, other
    await mongo_db.client.drop_database(other.name)


@pytest.mark.timeout(240)
async def test_batched_recording_equals_one_at_a_time(
    two_dbs: tuple[AsyncDatabase[Document], AsyncDatabase[Document]],
) -> None:
    single, batched = two_dbs
    retried_jobs = 0
    for seed in range(EXAMPLES):
        rng = random.Random(seed)
        events = [e for n in range(rng.randint(5, 30)) for e in job_events(rng, n)]
        for db in two_dbs:
            for name in ("jobs", "scheduled_jobs", "job_stats", "recorder_flushes"):
                await db.drop_collection(name)
            await ensure_indexes(db)
        one_at_a_time = EventBatchWriter(single.client, single)
        for event in events:
            await one_at_a_time.record([event], [], NOW)
            await one_at_a_time.flush(NOW)
        batches = deliveries(rng, events)
        halves = (batches[0::2], batches[1::2])  # two recorders pulling from one consumer
        writers = [EventBatchWriter(batched.client, batched) for _ in halves]

        await asyncio.gather(
            *(drain(w, half, rng) for w, half in zip(writers, halves, strict=True))
        )
        expected, got = await snapshot(single), await snapshot(batched)
        assert got == expected, f"seed {seed}"
        assert expected["stats"], f"seed {seed} finished no run"
        retried = [doc for doc in expected["jobs"] if len(doc.get("attempts", [])) > 1]
        retried_jobs += len(retried)
        for doc in retried:
            numbers = [attempt["attempt"] for attempt in doc["attempts"]]
            assert numbers == sorted(set(numbers)), doc["job_id"]
    assert retried_jobs >= EXAMPLES, "too few jobs kept several attempts"
    again = EventBatchWriter(batched.client, batched)
    writes = await again.record(events, [], NOW)
    await again.flush(NOW)
    assert writes.jobs_inserted + writes.jobs_updated == 0  # everything again: nothing moves
    assert await snapshot(batched) == got
