"""Seed 003's PostgreSQL tables (the cookie scanner's enhanced scheduler): each `schedules`
row a natscron schedule of kind `domain_scan`, each `job_executions` row a run of it.

Its `TIMESTAMP` columns carry no zone: they are read in the migration's time zone, the
one its crons are read in too (`--timezone`, UTC by default). The mapping is in
docs/migration.md.
"""

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from natscron.migration.definitions import DISABLED_REASON
from natscron.migration.frequency import frequency_cron
from natscron.migration.kinds import DOMAIN_SCAN
from natscron.migration.labels import source_labels
from natscron.migration.legacy_values import (
    LegacyValueError,
    hashed_id,
    json_object,
    moment,
    text,
)
from natscron.migration.outcomes import duration_ms, finished_status
from natscron.migration.records import Definition, Origin, Run, Scrape
from natscron_shared.contract.enums import ScheduledJobStatus, Trigger
from natscron_shared.contract.storage import FINAL, Document, JobDocument

LAYOUT = "postgresql-schedules"
SCHEDULES, EXECUTIONS = "schedules", "job_executions"
REQUIRED_COLUMNS = {
    SCHEDULES: frozenset({"schedule_id", "domain", "frequency", "time_config", "enabled"}),
    EXECUTIONS: frozenset({"execution_id", "schedule_id", "status", "started_at"}),
}
SCHEDULES_QUERY = "SELECT * FROM schedules ORDER BY schedule_id"
RUNS_QUERY = "SELECT * FROM job_executions ORDER BY execution_id"
SCHEDULE_PREFIX, RUN_PREFIX = "scan_", "scan_run_"
MAX_NAME_CHARS = 200


def _uuid(row: Document, column: str) -> str | None:
    value = row.get(column)
    return None if value is None else str(value)


def schedule_definition(row: Document, zone: ZoneInfo) -> Definition:
    schedule_id = str(row["schedule_id"])
    origin = Origin(f"postgresql:{SCHEDULES}", schedule_id)
    try:
        return _definition(row, origin, zone)
    except LegacyValueError as exc:
        return Definition(origin, schedule_id, (schedule_id,), problem=str(exc))


def _definition(row: Document, origin: Origin, zone: ZoneInfo) -> Definition:
    domain = text(row, "domain")
    if not domain:
        raise LegacyValueError("domain is empty")
    frequency = row.get("frequency")
    cron = frequency_cron(frequency, row.get("time_config"))
    kept = {
        "domain": domain,
        "domain_config_id": _uuid(row, "domain_config_id"),
        "profile_id": _uuid(row, "profile_id"),
    }
    notes: list[str] = []
    labels = source_labels(kept, notes)
    enabled = row.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        raise LegacyValueError(f"enabled {enabled!r} is neither true nor false")
    status: dict[str, Any] = {"status": ScheduledJobStatus.ACTIVE.value}
    if enabled is False:
        status = {"status": ScheduledJobStatus.PAUSED.value, "paused_reason": DISABLED_REASON}
        notes.append("enabled is false: the schedule is paused")
    name = f"{domain} {str(frequency).lower()}"[:MAX_NAME_CHARS]
    params = {key: value for key, value in kept.items() if value is not None}
    fields = {"id": origin.legacy_id, "name": name, "frequency": str(frequency).lower(), **kept}
    return Definition(
        origin,
        origin.legacy_id,
        (origin.legacy_id,),
        spec_fields={
            "scheduled_job_id": hashed_id(SCHEDULE_PREFIX, origin.legacy_id),
            "name": name,
            "cron_expression": cron,
            "timezone": zone.key,
            "labels": labels,
            **status,
        },
        scrape=Scrape(DOMAIN_SCAN, fields, params),
        notes=tuple(notes),
    )


def execution_run(row: Document, zone: ZoneInfo) -> Run:
    execution_id = str(row["execution_id"])
    origin = Origin(f"postgresql:{EXECUTIONS}", execution_id, text(row, "job_id"))
    reference = _uuid(row, "schedule_id")
    try:
        document = _document(row, execution_id, zone)
    except LegacyValueError as exc:
        return Run(origin, execution_id, reference, problem=str(exc))
    return Run(origin, execution_id, reference, document)


def _document(row: Document, execution_id: str, zone: ZoneInfo) -> JobDocument:
    status = finished_status(row.get("status"))
    started_at = moment(row, "started_at", zone)
    completed_at = moment(row, "completed_at", zone)
    created_at = moment(row, "created_at", zone) or started_at
    if created_at is None:
        raise LegacyValueError("the execution has no started_at and no created_at")
    metadata = json_object(row, "metadata")
    scan_id = _uuid(row, "scan_id")
    if scan_id is not None:
        metadata = {"scan_id": scan_id} | (metadata or {})
    return {
        "job_id": hashed_id(RUN_PREFIX, execution_id),
        "trigger": Trigger.SCHEDULED.value,
        "scheduled_for": None,
        "created_at": created_at,
        "retry_of": None,
        "status": status.value,
        "attempt": 1,
        "progress": FINAL,
        "runner_id": None,
        "started_at": started_at,
        "completed_at": completed_at,
        "duration_ms": _duration(row, started_at, completed_at),
        "properties_scraped": None,
        "item_batches": None,
        "error_message": text(row, "error_message"),
        "error_type": None,
        "cancelled_by": None,
        "properties_saved": 0,
        "saved_batches": [],
        "error_details": json_object(row, "error_details"),
        "metadata": metadata,
    }


def _duration(
    row: Document, started_at: datetime | None, completed_at: datetime | None
) -> int | None:
    measured = duration_ms(started_at, completed_at)
    if measured is not None:
        return measured
    seconds = row.get("duration_seconds")
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        raise LegacyValueError(f"duration_seconds {seconds!r} is not a duration")
    return round(seconds * 1000)
