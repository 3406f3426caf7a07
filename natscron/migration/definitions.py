"""A legacy recurring definition (a `jobs` document with `cron_expression`) as a natscron
`ScheduledJob`. The field mapping is the table in docs/migration.md."""

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from natscron.migration.legacy_params import SCRAPE_FIELDS, scrape_params, scraper_name
from natscron.migration.legacy_values import LegacyValueError, choice, derived_id, text
from natscron_shared.contract.enums import JobStatus, Priority, ScheduledJobStatus
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.contract.storage import Document

MARKER = "migrated_to_natscron"
ORIGIN_LABELS = {"origin": "legacy"}
DEFAULT_TIMEZONE = "UTC"
MAX_NAME_CHARS = 200
DISABLED_REASON = "disabled in the legacy system"
PAUSED_REASON = "paused in the legacy system"

MAPPED_FIELDS = frozenset(
    {
        "_id",
        "job_id",
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
        "started_at",
        "completed_at",
        "last_run_at",
        "next_run_at",
        "run_count",
        "last_run_status",
        "last_run_job_id",
        "properties_scraped",
        "properties_saved",
        "error_message",
        "scheduled_job_id",
    }
)
"""Run state and links the legacy app kept on a definition; natscron keeps its own, so
they are not carried over."""

SCHEDULE_STATUSES = tuple(status.value for status in ScheduledJobStatus)
EXECUTION_STATUSES = tuple(status.value for status in JobStatus)
"""A definition doubled as a job in the legacy app, so it carries the status of its last
execution too; that says nothing about whether it should fire."""


@dataclass(frozen=True)
class Converted:
    spec: ScheduledJob
    notes: list[str]


def convert(document: Document, default_scraper: str) -> Converted:
    """The spec, or `LegacyValueError` saying why there can be none."""
    unknown = sorted(set(document) - MAPPED_FIELDS - RUN_STATE_FIELDS)
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
    params = scrape_params(document)
    fields: dict[str, Any] = {
        "scheduled_job_id": derived_id(document),
        "name": _name(document, params),
        "description": text(document, "description") or "",
        "cron_expression": document.get("cron_expression"),
        "timezone": timezone,
        "scraper": scraper_name(document, default_scraper),
        "params": params,
        "priority": choice(document, "priority", tuple(p.value for p in Priority))
        or Priority.NORMAL.value,
        "labels": ORIGIN_LABELS,
        **_status(document, notes),
    }
    for name in ("max_retries", "timeout_seconds"):
        if document.get(name) is not None:
            fields[name] = document[name]
    try:
        return Converted(ScheduledJob.model_validate(fields), notes)
    except ValidationError as exc:
        raise LegacyValueError(_sentence(exc)) from None


def _name(document: Document, params: dict[str, Any]) -> str:
    given = text(document, "name")
    if given and given.strip():
        return given.strip()[:MAX_NAME_CHARS]
    described = " ".join(
        str(part)
        for part in (
            str(params.get("listing_type", "")).upper(),
            ", ".join(params.get("locations", [])),
        )
        if part
    )
    return (described or text(document, "job_id") or derived_id(document))[:MAX_NAME_CHARS]


def _status(document: Document, notes: list[str]) -> dict[str, Any]:
    """`status` active/inactive/paused as it is; `enabled: false` pauses an active one."""
    status = choice(document, "status", SCHEDULE_STATUSES + EXECUTION_STATUSES)
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


def _sentence(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(map(str, detail['loc'])) or 'definition'}: {detail['msg']}"
        for detail in error.errors(include_url=False)
    )
