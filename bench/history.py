"""Cost of recording a finished run as one schedule's history piles up.

The recorder writes a run's job, then advances `run_count`, `last_run_*` and
`consecutive_failures` and the statistics in its flush, from the stored history document,
not from the runs: this measures a run recorded and flushed on its own (the worst case: a
flush per run) on the embedded SecantusDB with 1,000, 100,000 and 1,000,000 prior runs of
the schedule (the target: flat, within 2x).
Run: `.venv/bin/python bench/history.py --runs 1000 100000 1000000`.
"""

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from natscron.embedded import start_mongo
from natscron_recorder.event_batch import EventBatchWriter
from natscron_shared.contract.enums import JobStatus, Priority, Trigger
from natscron_shared.contract.messages import JobEvent, RunRequest
from natscron_shared.contract.storage import FINAL, JobDocument
from natscron_shared.runtime.mongo import database_of, ensure_indexes, jobs, new_client

SAMPLES = 100
INSERT_CHUNK = 10_000
T0 = datetime(2026, 1, 1, tzinfo=UTC)
SCHEDULE = "one"


def prior_run(number: int) -> JobDocument:
    """A finished run as the recorder stores it, one second apart."""
    at = T0 + timedelta(seconds=number)
    return {
        "job_id": f"prior-{number}",
        "scheduled_job_id": SCHEDULE,
        "trigger": "scheduled",
        "status": "failed" if number % 10 == 0 else "completed",
        "attempt": 1,
        "progress": FINAL,
        "created_at": at,
        "scheduled_for": at,
        "started_at": at,
        "completed_at": at + timedelta(milliseconds=500),
        "duration_ms": 500,
        "properties_saved": 0,
        "saved_batches": [],
    }


def finished_event(number: int, at: datetime) -> JobEvent:
    request = RunRequest(
        job_id=f"new-{number}",
        scheduled_job_id=SCHEDULE,
        trigger=Trigger.SCHEDULED,
        priority=Priority.NORMAL,
        scheduled_for=at,
        created_at=at,
        scraper="noop",
    )
    return JobEvent(
        job=request,
        status=JobStatus.COMPLETED,
        attempt=1,
        at=at,
        runner_id="bench",
        started_at=at,
        completed_at=at,
        duration_ms=100,
        properties_scraped=0,
    )


async def bench(run_counts: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        mongo = await start_mongo(Path(tmp))
        client = new_client(mongo.url)
        db = database_of(client)
        try:
            await ensure_indexes(db)
            writer = EventBatchWriter(client, db)
            stored, recorded = 0, 0
            print(f"{'prior runs':>12}  {'p50 ms':>8}  {'p99 ms':>8}  {'mean ms':>8}  run_count")
            for target in sorted(run_counts):
                while stored < target:
                    chunk = [
                        prior_run(n) for n in range(stored, min(target, stored + INSERT_CHUNK))
                    ]
                    await jobs(db).insert_many(chunk, ordered=False)
                    stored += len(chunk)
                await db.scheduled_jobs.update_one(
                    {"scheduled_job_id": SCHEDULE},
                    {"$set": {"run_count": stored + recorded}},
                    upsert=True,
                )
                timings = []
                for _ in range(SAMPLES):
                    at = T0 + timedelta(seconds=stored + recorded)
                    started = time.perf_counter()
                    await writer.record([finished_event(recorded, at)], [], at)
                    await writer.flush(at)
                    timings.append((time.perf_counter() - started) * 1000)
                    recorded += 1
                doc = await db.scheduled_jobs.find_one({"scheduled_job_id": SCHEDULE})
                assert doc is not None and doc["run_count"] == stored + recorded
                timings.sort()
                print(
                    f"{target:>12,}  {statistics.median(timings):>8.1f}"
                    f"  {timings[int(0.99 * (len(timings) - 1))]:>8.1f}"
                    f"  {statistics.fmean(timings):>8.1f}  {doc['run_count']:,}",
                    flush=True,
                )
        finally:
            await client.close()
            await mongo.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, nargs="+", default=[1_000, 100_000, 1_000_000])
    asyncio.run(bench(parser.parse_args().runs))


if __name__ == "__main__":
    main()
