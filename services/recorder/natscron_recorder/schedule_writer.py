"""Writes to `scheduled_jobs` of the spec mirrored from KV.

It `$set`s the spec's fields only (the run history and next run are the event batches'),
so either may create the document first.
"""

from datetime import datetime

from pymongo.asynchronous.database import AsyncDatabase

from natscron_recorder.guarded import guarded_upsert
from natscron_shared.contract.enums import ScheduledJobStatus
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.contract.storage import SCHEDULED_JOBS, Document

MOMENTS = ("run_at", "start_at", "end_at", "paused_at")


def _older_revision(scheduled_job_id: str, revision: int) -> Document:
    return {"scheduled_job_id": scheduled_job_id, "kv_revision": {"$not": {"$gte": revision}}}


def spec_fields(spec: ScheduledJob) -> Document:
    """The spec as stored: JSON-compatible values (times of day as "HH:MM:SS"), but its
    moments stay dates so they can be queried as such."""
    fields = spec.model_dump(mode="json")
    fields.update({name: getattr(spec, name) for name in MOMENTS})
    return fields


async def write_spec(
    db: AsyncDatabase[Document], spec: ScheduledJob, revision: int, now: datetime
) -> bool:
    """True if stored, False if a newer KV revision was already mirrored."""
    update = {
        "$set": {**spec_fields(spec), "kv_revision": revision, "updated_at": now},
        "$unset": {"deleted_at": ""},
        # $min, not $setOnInsert: the run history may have created the document first.
        "$min": {"created_at": now},
        "$setOnInsert": {"run_count": 0, "consecutive_failures": 0},
    }
    return await guarded_upsert(
        db[SCHEDULED_JOBS], _older_revision(spec.scheduled_job_id, revision), update
    )


async def write_deletion(
    db: AsyncDatabase[Document], scheduled_job_id: str, revision: int, now: datetime
) -> bool:
    """The key was deleted from KV: keep the document and its history, mark it inactive."""
    update = {
        "$set": {
            "status": ScheduledJobStatus.INACTIVE.value,
            "deleted_at": now,
            "kv_revision": revision,
            "updated_at": now,
        }
    }
    return await guarded_upsert(
        db[SCHEDULED_JOBS], _older_revision(scheduled_job_id, revision), update
    )
