"""A legacy run (a `jobs` document without `cron_expression`) as a natscron `jobs`
document of the schedule its definition became. The mapping is in docs/migration.md."""

from datetime import datetime

from bson import ObjectId

from natscron.migration.legacy_params import SCRAPE_FIELDS, scrape_params, scraper_name
from natscron.migration.legacy_values import (
    LegacyValueError,
    choice,
    count,
    derived_id,
    legacy_id,
    moment,
    text,
)
from natscron_shared.contract.enums import JobStatus, Priority, Trigger
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.contract.storage import FINAL, Document, JobDocument

LINK_FIELD = "original_job_id"
FINISHED = {s.value: s for s in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)}
UNFINISHED = ("pending", "running")
TRIGGERED_PREFIXES = ("triggered_", "immediate_")
"""Legacy job ids of runs started by hand; every other run of a definition was scheduled."""


def reference(document: Document) -> str | None:
    """The definition a run belongs to, by its `job_id` or its `_id`; None for a one-time job."""
    value = document.get(LINK_FIELD)
    if value is None or isinstance(value, str | ObjectId):
        return None if value is None else str(value)
    raise LegacyValueError(f"{LINK_FIELD} {value!r} is neither a string nor an ObjectId")


def job_document(document: Document, spec: ScheduledJob, now: datetime) -> JobDocument:
    """The natscron document, or `LegacyValueError` saying why the run cannot be linked."""
    status = _status(document)
    legacy_job_id = text(document, "job_id")
    started_at = moment(document, "started_at")
    completed_at = moment(document, "completed_at")
    own_scrape = any(document.get(name) is not None for name in SCRAPE_FIELDS)
    return {
        "job_id": derived_id(document),
        "scheduled_job_id": spec.scheduled_job_id,
        "trigger": _trigger(legacy_job_id).value,
        "priority": choice(document, "priority", tuple(p.value for p in Priority))
        or spec.priority.value,
        "scheduled_for": None,
        "created_at": _created_at(document, started_at),
        "scraper": scraper_name(document, spec.scraper),
        "params": scrape_params(document) if own_scrape else spec.params,
        "retry_of": None,
        "status": status.value,
        "attempt": 1,
        "progress": FINAL,
        "updated_at": now,
        "runner_id": None,
        "started_at": started_at,
        "completed_at": completed_at,
        "duration_ms": _duration_ms(document, started_at, completed_at),
        "properties_scraped": count(document, "properties_scraped"),
        "item_batches": None,
        "error_message": text(document, "error_message"),
        "error_type": None,
        "cancelled_by": None,
        "properties_saved": count(document, "properties_saved") or 0,
        "saved_batches": [],
        "migrated_from": {"legacy_id": legacy_id(document), "legacy_job_id": legacy_job_id},
    }


def _status(document: Document) -> JobStatus:
    value = document.get("status")
    if isinstance(value, str) and value.lower() in UNFINISHED:
        raise LegacyValueError(
            f"status {value!r}: the run has not finished in the legacy system, and nothing in"
            " natscron would ever finish it; migrate again once it has"
        )
    if not isinstance(value, str) or value.lower() not in FINISHED:
        raise LegacyValueError(
            f"status {value!r} is not one of {', '.join([*FINISHED, *UNFINISHED])}"
        )
    return FINISHED[value.lower()]


def _trigger(legacy_job_id: str | None) -> Trigger:
    if legacy_job_id is not None and legacy_job_id.startswith(TRIGGERED_PREFIXES):
        return Trigger.TRIGGERED
    return Trigger.SCHEDULED


def _created_at(document: Document, started_at: datetime | None) -> datetime:
    created = moment(document, "created_at") or started_at
    if created is not None:
        return created
    identifier = document.get("_id")
    if isinstance(identifier, ObjectId):
        return identifier.generation_time
    raise LegacyValueError("the run has no created_at, no started_at and no ObjectId to date it")


def _duration_ms(
    document: Document, started_at: datetime | None, completed_at: datetime | None
) -> int | None:
    if started_at is not None and completed_at is not None:
        return max(0, round((completed_at - started_at).total_seconds() * 1000))
    return count(document, "duration_ms")
