"""Prints each run as it starts and finishes, from a change stream on `jobs`."""

import logging
from typing import TextIO, cast

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from natscron.cli.moments import moment
from natscron_shared.contract.enums import JobStatus
from natscron_shared.contract.storage import JOBS, Document, JobDocument

log = logging.getLogger(__name__)

REMEMBERED_LINES = 10_000


def format_job(job: JobDocument) -> str:
    parts = [
        moment(job.get("created_at")),
        f"{job.get('status', '?'):<9}",
        f"{job['job_id']:<56}",
        f"scraped={job.get('properties_scraped') or 0:<5}",
        f"saved={job.get('properties_saved') or 0:<5}",
    ]
    if job.get("duration_ms") is not None:
        parts.append(f"{job['duration_ms']} ms")
    if job.get("error_type"):
        parts.append(f"{job['error_type']}: {job.get('error_message')}")
    return "  ".join(parts)


def _is_fully_recorded(job: JobDocument) -> bool:
    """Finished, and every item batch the runner published has been saved."""
    if not JobStatus(job.get("status", "pending")).is_terminal:
        return False
    return len(job.get("saved_batches", [])) >= (job.get("item_batches") or 0)


async def tail_runs(db: AsyncDatabase[Document], out: TextIO) -> None:
    """Runs until cancelled; one line when a job starts, one when it is fully recorded."""
    printed: dict[tuple[str, str], None] = {}  # insertion-ordered, so the oldest go first
    try:
        async with await db[JOBS].watch(full_document="updateLookup") as stream:
            async for change in stream:
                job = cast(JobDocument | None, change.get("fullDocument"))
                if not job or "status" not in job:
                    continue
                status = job["status"]
                show = status == JobStatus.RUNNING or _is_fully_recorded(job)
                if show and (job["job_id"], status) not in printed:
                    printed[(job["job_id"], status)] = None
                    if len(printed) > REMEMBERED_LINES:
                        del printed[next(iter(printed))]
                    print(format_job(job), file=out, flush=True)
    except PyMongoError:
        log.exception("the run tail stopped; `natscron jobs` still shows the runs")
