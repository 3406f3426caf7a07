"""Seed 004's PostgreSQL tables (the crawler's interval scheduler): each recurring `jobs`
row a natscron schedule of kind `crawl`, each `job_executions` row a run of it.

A row is recurring when it has `interval_minutes` (a count of `interval_type` units, which
the crawler preferred) or else `schedule_time` (its older cron); any other row is a one-time
crawl, not migrated. An interval counts from the row's `next_run_at`, so natscron fires
when the crawler would have next, then every period. The mapping is in docs/migration.md.
"""

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from natscron.migration.definitions import DISABLED_REASON, MAX_NAME_CHARS, PAUSED_REASON
from natscron.migration.kinds import CRAWL
from natscron.migration.labels import source_labels
from natscron.migration.legacy_values import (
    LegacyValueError,
    count,
    hashed_id,
    json_object,
    moment,
    text,
)
from natscron.migration.outcomes import duration_ms, finished_status
from natscron.migration.records import Definition, Origin, Run, Scrape
from natscron_shared.contract.enums import ScheduledJobStatus, Trigger
from natscron_shared.contract.storage import FINAL, Document, JobDocument

LAYOUT = "postgresql-crawler"
JOBS, EXECUTIONS = "jobs", "job_executions"
REQUIRED_COLUMNS = {
    JOBS: frozenset(
        {"id", "url", "schedule_time", "status", "interval_minutes", "interval_type"}
        | {"next_run_at", "is_paused", "max_retries"}
    ),
    EXECUTIONS: frozenset({"id", "job_id", "status", "started_at", "completed_at"}),
}
RECURRING = "interval_minutes IS NOT NULL OR schedule_time IS NOT NULL"
SCHEDULES_QUERY = f"SELECT * FROM jobs WHERE {RECURRING} ORDER BY id"
RUNS_QUERY = (
    "SELECT e.*, NOT (j.interval_minutes IS NOT NULL OR j.schedule_time IS NOT NULL)"
    " AS natscron_one_time FROM job_executions e LEFT JOIN jobs j ON j.id = e.job_id"
    " ORDER BY e.id"
)
"""Each execution, and whether its job is a one-time crawl (NULL: no such job)."""
SCHEDULE_PREFIX, RUN_PREFIX = "crawl_", "crawl_run_"
INTERVAL_UNITS = {"minutes": "minutes", "hours": "hours", "days": "days"}
RESOURCE_COLUMNS = ("execution_number", "cpu_time_ms", "memory_peak_mb")
"""Execution figures natscron has no field for: kept in the run's `metadata`."""


def job_definition(row: Document, zone: ZoneInfo) -> Definition:
    job_id = str(row["id"])
    origin = Origin(f"postgresql:{JOBS}", job_id)
    try:
        return _definition(row, origin, zone)
    except LegacyValueError as exc:
        return Definition(origin, job_id, (job_id,), problem=str(exc))


def _definition(row: Document, origin: Origin, zone: ZoneInfo) -> Definition:
    url = text(row, "url")
    if not url:
        raise LegacyValueError("url is empty")
    notes: list[str] = []
    source_id = text(row, "source_id")
    source_name = text(row, "source_name")
    name = (source_name or url)[:MAX_NAME_CHARS]
    spec: dict[str, Any] = {
        "scheduled_job_id": hashed_id(SCHEDULE_PREFIX, origin.legacy_id),
        "name": name,
        "labels": source_labels({"source_id": source_id}, notes),
        **_timing(row, zone, notes),
        **_status(row, notes),
    }
    for column in ("max_retries", "retry_backoff_seconds"):
        value = count(row, column)
        if value is not None:
            spec[column] = value
    retrying = count(row, "current_retry_count")
    if retrying:
        notes.append(f"was retrying (retry {retrying}): natscron starts with a fresh run")
    if row.get("lock_token") is not None:
        locked_at = moment(row, "lock_acquired_at")
        since = f" since {locked_at.isoformat()}" if locked_at else ""
        notes.append(f"locked by a running crawl{since}: that run is migrated once it finishes")
    metadata = json_object(row, "metadata")
    fields = {
        "id": origin.legacy_id,
        "name": name,
        "url": url,
        "source_id": source_id,
        "source_name": source_name,
        "metadata": metadata,
    }
    params = {"url": url} | ({"source_id": source_id} if source_id else {})
    return Definition(
        origin,
        origin.legacy_id,
        (origin.legacy_id,),
        spec_fields=spec,
        scrape=Scrape(CRAWL, fields, params),
        notes=tuple(notes),
    )


def _timing(row: Document, zone: ZoneInfo, notes: list[str]) -> dict[str, Any]:
    """An interval anchored at `next_run_at`, else the older cron in the migration's zone."""
    every = count(row, "interval_minutes")
    cron = text(row, "schedule_time")
    if every is None:
        return {"cron_expression": cron, "timezone": zone.key}
    if every == 0:
        raise LegacyValueError("interval_minutes 0 would crawl without pause")
    unit_name = text(row, "interval_type") or "minutes"
    unit = INTERVAL_UNITS.get(unit_name.lower())
    if unit is None:
        raise LegacyValueError(
            f"interval_type {unit_name!r} is not one of {', '.join(INTERVAL_UNITS)}"
        )
    if cron is not None:
        notes.append(f"schedule_time {cron!r} not used: the crawler preferred interval_minutes")
    next_run_at = moment(row, "next_run_at")
    if next_run_at is None:
        notes.append("no next_run_at: the interval counts from the Unix epoch")
    return {"interval": {unit: every}, "start_at": next_run_at}


def _status(row: Document, notes: list[str]) -> dict[str, Any]:
    """`is_paused` pauses; a cancelled job is inactive; `schedule_enabled` false pauses."""
    paused = row.get("is_paused")
    if paused is not None and not isinstance(paused, bool):
        raise LegacyValueError(f"is_paused {paused!r} is neither true nor false")
    if text(row, "status") == "cancelled":
        return {"status": ScheduledJobStatus.INACTIVE.value}
    if paused:
        return {"status": ScheduledJobStatus.PAUSED.value, "paused_reason": PAUSED_REASON}
    if row.get("schedule_enabled") is False:
        notes.append("schedule_enabled is false: the schedule is paused")
        return {"status": ScheduledJobStatus.PAUSED.value, "paused_reason": DISABLED_REASON}
    return {"status": ScheduledJobStatus.ACTIVE.value}


def execution_run(row: Document) -> Run:
    execution_id = str(row["id"])
    origin = Origin(f"postgresql:{EXECUTIONS}", execution_id)
    reference = None if row.get("natscron_one_time") else str(row["job_id"])
    try:
        document = _document(row, execution_id)
    except LegacyValueError as exc:
        return Run(origin, execution_id, reference, problem=str(exc))
    return Run(origin, execution_id, reference, document)


def _document(row: Document, execution_id: str) -> JobDocument:
    status = finished_status(row.get("status"))
    started_at = moment(row, "started_at")
    completed_at = moment(row, "completed_at")
    created_at = moment(row, "created_at") or started_at
    if created_at is None:
        raise LegacyValueError("the execution has no started_at")
    stack_trace = text(row, "stack_trace")
    retry_attempt = count(row, "retry_attempt") or 0
    return {
        "job_id": hashed_id(RUN_PREFIX, execution_id),
        "trigger": Trigger.SCHEDULED.value,
        "scheduled_for": None,
        "created_at": created_at,
        "retry_of": None,
        "status": status.value,
        "attempt": retry_attempt + 1,
        "progress": FINAL,
        "runner_id": None,
        "started_at": started_at,
        "completed_at": completed_at,
        "duration_ms": _duration(row, started_at, completed_at),
        "properties_scraped": count(row, "items_crawled"),
        "item_batches": None,
        "error_message": text(row, "error_message"),
        "error_type": None,
        "cancelled_by": None,
        "properties_saved": count(row, "items_indexed") or 0,
        "saved_batches": [],
        "error_details": None if stack_trace is None else {"stack_trace": stack_trace},
        "metadata": _metadata(row),
    }


def _duration(
    row: Document, started_at: datetime | None, completed_at: datetime | None
) -> int | None:
    stored = count(row, "duration_ms")
    return stored if stored is not None else duration_ms(started_at, completed_at)


def _metadata(row: Document) -> dict[str, Any] | None:
    """The row's `metadata`, plus the figures natscron has no field for (the row's own
    keys win)."""
    figures = {column: row[column] for column in RESOURCE_COLUMNS if row.get(column) is not None}
    stored = json_object(row, "metadata")
    if not figures:
        return stored
    return figures | (stored or {})
