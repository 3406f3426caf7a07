"""MongoDB source schedules as natscron `ScheduledJob` fields: seed 000's `scheduled_jobs`
documents, and the legacy templates (`jobs` documents with `cron_expression`) that seed 000
replaced with them. The field mapping is the table in docs/migration.md."""

from dataclasses import replace
from typing import Any

from natscron.migration.legacy_params import SCRAPE_FIELDS, described_name, listing_scrape
from natscron.migration.legacy_values import (
    LegacyValueError,
    choice,
    derived_id,
    kept_id,
    legacy_id,
    text,
)
from natscron.migration.records import Definition, Origin
from natscron_shared.contract.enums import JobStatus, Priority, ScheduledJobStatus
from natscron_shared.contract.storage import Document

MARKER = "migrated_to_natscron"
ORIGIN_LABELS = {"origin": "legacy"}
DEFAULT_TIMEZONE = "UTC"
MAX_NAME_CHARS = 200
DISABLED_REASON = "disabled in the legacy system"
PAUSED_REASON = "paused in the legacy system"
LEGACY_COLLECTION = "jobs"
SCHEDULED_JOBS_COLLECTION = "scheduled_jobs"

SPEC_FIELDS = frozenset(
    {
        "_id",
        "name",
        "description",
        "cron_expression",
        "timezone",
        "priority",
        "enabled",
        "status",
        "max_retries",
        "timeout_seconds",
        MARKER,
        *SCRAPE_FIELDS,
    }
)
RUN_STATE_FIELDS = frozenset(
    {
        "created_at",
        "updated_at",
        "last_run_at",
        "next_run_at",
        "run_count",
        "last_run_status",
        "last_run_job_id",
    }
)
"""Run state the source kept on a schedule; natscron keeps its own, so it is not carried
over (the migrated runs rebuild it)."""
TEMPLATE_RUN_STATE_FIELDS = RUN_STATE_FIELDS | {
    "started_at",
    "completed_at",
    "properties_scraped",
    "properties_saved",
    "error_message",
    "scheduled_job_id",
}
"""A legacy template doubled as a job: it carries its last execution's fields too, and
`scheduled_job_id` once seed 000's own migration moved it to `scheduled_jobs`."""

SCHEDULE_STATUSES = tuple(status.value for status in ScheduledJobStatus)
EXECUTION_STATUSES = tuple(status.value for status in JobStatus)
"""The status of a template's last execution, which says nothing about whether it fires."""


def scheduled_job_definition(document: Document) -> Definition:
    """A seed 000 `scheduled_jobs` document: its `scheduled_job_id` is kept when it is a
    natscron id."""
    source_id = document.get("scheduled_job_id")
    keys = tuple(k for k in (source_id, legacy_id(document)) if isinstance(k, str))
    origin = Origin(
        f"mongodb:{SCHEDULED_JOBS_COLLECTION}",
        legacy_id(document),
        source_id if isinstance(source_id, str) else None,
    )
    known = SPEC_FIELDS | RUN_STATE_FIELDS | {"scheduled_job_id"}
    try:
        if not isinstance(source_id, str):
            raise LegacyValueError(f"scheduled_job_id {source_id!r} is not a string")
        identifier = kept_id(source_id)
        return _definition(document, origin, keys, identifier, source_id, known, SCHEDULE_STATUSES)
    except LegacyValueError as exc:
        return Definition(origin, document["_id"], keys, problem=str(exc))


def legacy_definition(document: Document) -> Definition:
    """A legacy template of the `jobs` collection, `legacy_<_id>` in natscron."""
    job_id = document.get("job_id")
    keys = tuple(k for k in (legacy_id(document), job_id) if isinstance(k, str))
    origin = Origin(
        f"mongodb:{LEGACY_COLLECTION}",
        legacy_id(document),
        job_id if isinstance(job_id, str) else None,
    )
    known = SPEC_FIELDS | TEMPLATE_RUN_STATE_FIELDS | {"job_id"}
    statuses = SCHEDULE_STATUSES + EXECUTION_STATUSES
    successor = document.get("scheduled_job_id")
    try:
        identifier = derived_id(document)
        definition = _definition(
            document, origin, keys, identifier, origin.legacy_id, known, statuses
        )
    except LegacyValueError as exc:
        definition = Definition(origin, document["_id"], keys, problem=str(exc))
    return replace(definition, superseded_by=successor if isinstance(successor, str) else None)


def _definition(
    document: Document,
    origin: Origin,
    keys: tuple[str, ...],
    identifier: str,
    source_id: str,
    known: frozenset[str],
    statuses: tuple[str, ...],
) -> Definition:
    unknown = sorted(set(document) - known)
    if unknown:
        listed = ", ".join(repr(name) for name in unknown)
        raise LegacyValueError(
            f"unknown legacy field(s) {listed}: natscron has nothing that would act on them"
        )
    notes: list[str] = []
    timezone = text(document, "timezone")
    if timezone is None:
        timezone = DEFAULT_TIMEZONE
        notes.append("no timezone in the legacy definition: UTC assumed")
    scrape = listing_scrape(document, source_id)
    name = _name(document, described_name(scrape), identifier)
    fields: dict[str, Any] = {
        "scheduled_job_id": identifier,
        "name": name,
        "description": text(document, "description") or "",
        "cron_expression": document.get("cron_expression"),
        "timezone": timezone,
        "priority": choice(document, "priority", tuple(p.value for p in Priority))
        or Priority.NORMAL.value,
        "labels": ORIGIN_LABELS,
        **_status(document, statuses, notes),
    }
    for field in ("max_retries", "timeout_seconds"):
        if document.get(field) is not None:
            fields[field] = document[field]
    scrape = replace(scrape, fields=scrape.fields | {"name": name})
    return Definition(
        origin,
        document["_id"],
        keys,
        spec_fields=fields,
        scrape=scrape,
        notes=tuple(notes),
        marker=document.get(MARKER),
    )


def _name(document: Document, described: str, identifier: str) -> str:
    given = text(document, "name")
    if given and given.strip():
        return given.strip()[:MAX_NAME_CHARS]
    return (described or text(document, "job_id") or identifier)[:MAX_NAME_CHARS]


def _status(document: Document, statuses: tuple[str, ...], notes: list[str]) -> dict[str, Any]:
    """`status` active/inactive/paused as it is; `enabled: false` pauses an active one."""
    status = choice(document, "status", statuses)
    enabled = document.get("enabled", True)
    if not isinstance(enabled, bool):
        raise LegacyValueError(f"enabled {enabled!r} is neither true nor false")
    if status == ScheduledJobStatus.INACTIVE.value:
        return {"status": status}
    if status == ScheduledJobStatus.PAUSED.value:
        return {"status": status, "paused_reason": PAUSED_REASON}
    if not enabled:
        notes.append("enabled is false: the schedule is paused")
        return {"status": ScheduledJobStatus.PAUSED.value, "paused_reason": DISABLED_REASON}
    return {"status": ScheduledJobStatus.ACTIVE.value}
