"""A MongoDB source run (a `jobs` document without `cron_expression`) as a natscron `jobs`
document. The mapping is in docs/migration.md."""

from collections.abc import Collection
from datetime import datetime

from bson import ObjectId

from natscron.migration.definitions import LEGACY_COLLECTION, MARKER
from natscron.migration.legacy_params import has_scrape_fields, listing_scrape
from natscron.migration.legacy_values import (
    LegacyValueError,
    choice,
    count,
    derived_id,
    kept_job_id,
    legacy_id,
    moment,
    text,
)
from natscron.migration.outcomes import duration_ms, finished_status
from natscron.migration.records import Origin, Run
from natscron_shared.contract.enums import Priority, Trigger
from natscron_shared.contract.storage import FINAL, Document, JobDocument

LINK_FIELDS = ("scheduled_job_id", "original_job_id")
"""Seed 000 links a run to its schedule by `scheduled_job_id`; seed 001's legacy runs, and
some of its newer ones, by `original_job_id`."""
TRIGGERED_PREFIXES = ("triggered_", "immediate_")
"""Source job ids of runs started by hand; every other run of a schedule was scheduled."""


def reference(document: Document) -> str | None:
    """The schedule a run belongs to, by a schedule's id, a template's `job_id` or an
    `_id`; None for a one-time job."""
    for field in LINK_FIELDS:
        value = document.get(field)
        if value is None:
            continue
        if isinstance(value, str | ObjectId):
            return str(value)
        raise LegacyValueError(f"{field} {value!r} is neither a string nor an ObjectId")
    return None


def run_record(document: Document, newer_keys: Collection[str]) -> Run:
    """`newer_keys`: the references to `scheduled_jobs` schedules, whose runs keep their ids."""
    legacy_job_id = document.get("job_id")
    origin = Origin(
        f"mongodb:{LEGACY_COLLECTION}",
        legacy_id(document),
        legacy_job_id if isinstance(legacy_job_id, str) else None,
    )
    marker = document.get(MARKER)
    marker = marker if isinstance(marker, dict) else None
    try:
        linked_to = reference(document)
    except LegacyValueError as exc:
        return Run(origin, document["_id"], None, link_problem=str(exc), marker=marker)
    try:
        scrape = listing_scrape(document, origin.legacy_id) if has_scrape_fields(document) else None
        newer = linked_to in newer_keys
        return Run(
            origin, document["_id"], linked_to, job_document(document, newer), scrape, marker=marker
        )
    except LegacyValueError as exc:
        return Run(origin, document["_id"], linked_to, problem=str(exc), marker=marker)


def job_document(document: Document, newer: bool) -> JobDocument:
    """The natscron document but what its schedule decides. A run of a `scheduled_jobs`
    schedule (`newer`) keeps its `job_id`; a legacy template's is `legacy_<_id>`."""
    status = finished_status(document.get("status"))
    legacy_job_id = text(document, "job_id")
    started_at = moment(document, "started_at")
    completed_at = moment(document, "completed_at")
    job: JobDocument = {
        "job_id": kept_job_id(legacy_job_id, document) if newer else derived_id(document),
        "trigger": _trigger(legacy_job_id).value,
        "scheduled_for": None,
        "created_at": _created_at(document, started_at),
        "retry_of": None,
        "status": status.value,
        "attempt": 1,
        "progress": FINAL,
        "runner_id": None,
        "started_at": started_at,
        "completed_at": completed_at,
        "duration_ms": _duration(document, started_at, completed_at),
        "properties_scraped": count(document, "properties_scraped"),
        "item_batches": None,
        "error_message": text(document, "error_message"),
        "error_type": None,
        "cancelled_by": None,
        "properties_saved": count(document, "properties_saved") or 0,
        "saved_batches": [],
        "error_details": None,
        "metadata": None,
    }
    priority = choice(document, "priority", tuple(p.value for p in Priority))
    if priority is not None:
        job["priority"] = priority
    return job


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


def _duration(
    document: Document, started_at: datetime | None, completed_at: datetime | None
) -> int | None:
    measured = duration_ms(started_at, completed_at)
    return measured if measured is not None else count(document, "duration_ms")
