"""Retention keeps each schedule's newest N runs or D days, whichever keeps more, and
leaves statistics, history and items alone."""

from datetime import UTC, datetime, timedelta

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from natscron_recorder.retention import RetentionRule, RetentionSweep
from natscron_shared.contract.storage import Document
from natscron_shared.runtime.clock import ManualClock
from natscron_shared.runtime.mongo import ensure_indexes

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
DAY = timedelta(days=1)


def run(job_id: str, scheduled: str | None, age: timedelta, status: str = "completed") -> Document:
    return {"job_id": job_id, "scheduled_job_id": scheduled, "created_at": NOW - age,
            "status": status}  # fmt: skip


async def test_keeps_newest_runs_or_recent_days_whichever_keeps_more(
    mongo_db: AsyncDatabase[Document],
) -> None:
    await ensure_indexes(mongo_db)
    busy = [run(f"busy-{n}", "busy", n * timedelta(hours=1)) for n in range(100)]  # 4 days
    sparse = [run(f"sparse-{n}", "sparse", n * 10 * DAY) for n in range(6)]  # 0..50 days
    adhoc = [run("adhoc-new", None, DAY), run("adhoc-old", None, 31 * DAY)]
    open_old = [run("sparse-open", "sparse", 60 * DAY, status="running")]
    await mongo_db.jobs.insert_many(busy + sparse + adhoc + open_old)
    await mongo_db.scheduled_jobs.insert_many(
        [{"scheduled_job_id": s, "run_count": 1000} for s in ("busy", "sparse")]
    )
    await mongo_db.job_stats.insert_one({"_id": "busy|all", "runs": 1000})
    await mongo_db.items.insert_one({"key": "k", "last_job_id": "busy-99"})
    sweep = RetentionSweep(mongo_db, RetentionRule(keep_runs=3, keep_days=30), ManualClock(NOW))

    assert await sweep.sweep() == 3  # sparse-40d, sparse-50d, adhoc-old
    kept = set(await mongo_db.jobs.distinct("job_id"))
    assert {f"busy-{n}" for n in range(100)} <= kept  # all within 30 days
    assert {"sparse-0", "sparse-1", "sparse-2", "sparse-3"} <= kept
    assert {"sparse-4", "sparse-5", "adhoc-old"}.isdisjoint(kept)
    assert {"adhoc-new", "sparse-open"} <= kept  # recent, and never a run still open

    tight = RetentionSweep(mongo_db, RetentionRule(keep_runs=10, keep_days=1), ManualClock(NOW))
    assert await tight.sweep() == 75  # busy older than a day (its last day has 25 runs)
    assert await mongo_db.jobs.count_documents({"scheduled_job_id": "busy"}) == 25
    assert await mongo_db.jobs.count_documents({"scheduled_job_id": "sparse"}) == 5  # < 10 runs
    assert await mongo_db.job_stats.find_one({"_id": "busy|all"}) == {
        "_id": "busy|all",
        "runs": 1000,
    }
    assert await mongo_db.scheduled_jobs.count_documents({"run_count": 1000}) == 2
    assert await mongo_db.items.count_documents({}) == 1
