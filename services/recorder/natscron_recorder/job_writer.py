"""One `jobs` document per job_id, built from its events; its status never moves back.

Events are ordered by `(attempt, status.rank)`; a terminal status is final. The write
is one guarded upsert whose filter only matches a document that is older than the
event, so redelivered, duplicated and out-of-order events all end in the same document.
"""

from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from natscron_recorder.guarded import guarded_upsert
from natscron_recorder.history import refresh_run_history
from natscron_recorder.mongo import JOBS, Document
from natscron_shared.messages import JobEvent

RESULT_FIELDS = (
    "runner_id",
    "started_at",
    "completed_at",
    "duration_ms",
    "properties_scraped",
    "item_batches",
)
ERROR_FIELDS = ("error_message", "error_type")
FINAL = 2**62
"""The stored `progress` of a terminal job: above every event's, so nothing replaces it."""


def position(event: JobEvent) -> int:
    """`(attempt, status.rank)` as one number, so the guard is one comparison, no `$or`."""
    return event.attempt * 3 + event.status.rank


def older_than(event: JobEvent) -> Document:
    """Matches a stored job that `event` supersedes, or one without events yet (created
    by its items): `$not` also matches a missing `progress`."""
    return {"job_id": event.job.job_id, "progress": {"$not": {"$gte": position(event)}}}


def job_fields(event: JobEvent, now: datetime) -> Document:
    """What the event says about the job. Absent results keep earlier data; a terminal
    event clears the error of an earlier attempt, since it describes the final one."""
    request = event.job
    fields: dict[str, Any] = {
        "job_id": request.job_id,
        "scheduled_job_id": request.scheduled_job_id,
        "trigger": request.trigger.value,
        "priority": request.priority.value,
        "scheduled_for": request.scheduled_for,
        "created_at": request.created_at,
        "scraper": request.scraper,
        "params": request.params,
        "status": event.status.value,
        "attempt": event.attempt,
        "progress": FINAL if event.status.is_terminal else position(event),
        "updated_at": now,
    }
    for name in RESULT_FIELDS:
        if getattr(event, name) is not None:
            fields[name] = getattr(event, name)
    for name in ERROR_FIELDS:
        if event.status.is_terminal or getattr(event, name) is not None:
            fields[name] = getattr(event, name)
    return fields


async def write_job_event(db: AsyncDatabase[Document], event: JobEvent, now: datetime) -> bool:
    """True if the event moved the job forward, False if the document was already as new."""
    update = {
        "$set": job_fields(event, now),
        # Item writes own these two ($inc/$push); events only make sure they exist.
        "$setOnInsert": {"properties_saved": 0, "saved_batches": []},
    }
    return await guarded_upsert(db[JOBS], older_than(event), update)


async def record_job_event(db: AsyncDatabase[Document], event: JobEvent, now: datetime) -> bool:
    """Write the job, then its scheduled job's run history.

    The history is refreshed for duplicates too, so a redelivery after a crash between
    the two writes completes the second one.
    """
    applied = await write_job_event(db, event, now)
    scheduled_job_id = event.job.scheduled_job_id
    if event.status.is_finished_run and scheduled_job_id is not None:
        await refresh_run_history(db, scheduled_job_id)
    return applied
