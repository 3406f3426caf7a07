"""The run history of a scheduled job, recomputed from its `jobs` documents.

Recomputing (instead of incrementing) heals itself: a redelivered event or a crash
between writes can never count a run twice or miss one. Finished runs only ever
get added, so a recomputation that counted more runs is never overwritten by one
that counted fewer (the `run_count` guard); the one that counted them all wins.
"""

from collections.abc import Iterable

from pymongo.asynchronous.database import AsyncDatabase

from natscron_recorder.guarded import guarded_upsert
from natscron_recorder.mongo import JOBS, SCHEDULED_JOBS, Document
from natscron_shared.enums import FINISHED_RUN_STATUSES, JobStatus

RECENT_RUNS = 100
"""How far back `consecutive_failures` looks for the latest completed run."""


def consecutive_failures(newest_first: Iterable[str]) -> int:
    """Failed runs since the latest completed one (cancelled runs neither count nor reset)."""
    failures = 0
    for status in newest_first:
        if status == JobStatus.COMPLETED:
            break
        if status == JobStatus.FAILED:
            failures += 1
    return failures


async def refresh_run_history(db: AsyncDatabase[Document], scheduled_job_id: str) -> None:
    finished = {"scheduled_job_id": scheduled_job_id, "status": {"$in": FINISHED_RUN_STATUSES}}
    jobs = db[JOBS]
    run_count = await jobs.count_documents(finished)
    # Read after counting, so these include at least the runs counted.
    recent = (
        await jobs.find(finished, {"_id": 0, "job_id": 1, "status": 1, "completed_at": 1})
        .sort("completed_at", -1)
        .limit(RECENT_RUNS)
        .to_list()
    )
    if not recent:
        return
    latest = recent[0]
    history = {
        "run_count": run_count,
        "last_run_at": latest.get("completed_at"),
        "last_run_status": latest["status"],
        "last_run_job_id": latest["job_id"],
        "consecutive_failures": consecutive_failures(run["status"] for run in recent),
    }
    query = {"scheduled_job_id": scheduled_job_id, "run_count": {"$not": {"$gt": run_count}}}
    await guarded_upsert(db[SCHEDULED_JOBS], query, {"$set": history})
