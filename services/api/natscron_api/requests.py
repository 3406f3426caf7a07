"""Requests of the NATS face (`natscron.api.*`), one model per endpoint, as JSON bodies.

They take what the HTTP face takes in its paths, queries and bodies, with the same limits,
and refuse fields they do not know. An empty body is `{}`. Times without an offset are UTC.
"""

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from natscron_shared.contract import names
from natscron_shared.contract.enums import JobStatus, Priority, ScheduledJobStatus, Trigger
from natscron_shared.contract.iso_time import iso_text
from natscron_shared.contract.models import (
    LABEL_VALUE,
    MAX_NOTE_CHARS,
    Identifier,
    JobId,
    LabelSelector,
    ScheduledJob,
)
from natscron_shared.contract.schema_rules import exactly_one_of

MAX_PAGE = 1000
MAX_OFFSET = 100_000
"""Deeper pages cost the database a skip each: page on with the cursor instead."""
MAX_BULK_CANCEL = 1000
"""Jobs one bulk cancel may name or select."""
STORED_LABEL_KEY = r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}"
"""A label key MongoDB can be queried by: no dots, which it reads as a path."""


def subject_of(endpoint: str) -> str:
    """The subject of an endpoint: `schedules.list` -> `natscron.api.schedules.list`."""
    return f"{names.API_PREFIX}.{endpoint}"


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


UtcDatetime = Annotated[datetime, iso_text, AfterValidator(_utc)]
Limit = Annotated[int, Field(ge=1, le=MAX_PAGE, description="at most this many")]
Offset = Annotated[
    int,
    Field(ge=0, le=MAX_OFFSET, description="skip this many (after the cursor's, if given)"),
]
CursorText = Annotated[
    str,
    Field(
        description="`next_cursor` of the previous page",
        json_schema_extra={"pattern": "^[A-Za-z0-9_-]+$", "maxLength": 2048},
    ),
]
"""Opaque: only a cursor a page handed out is one (`invalid_cursor` otherwise); the schema
says its alphabet."""
StoredLabelSelector = Annotated[
    str,
    Field(
        pattern=f"^{STORED_LABEL_KEY}={LABEL_VALUE}(,{STORED_LABEL_KEY}={LABEL_VALUE})*$",
        max_length=8192,
        description="labels that must all match: `team=sold,env=prod` (keys without dots)",
    ),
]
Reason = Annotated[str | None, Field(max_length=MAX_NOTE_CHARS, description="a note kept")]
SearchText = Annotated[
    str,
    Field(
        min_length=1,
        max_length=200,
        description="scheduled jobs whose id or name holds this text, in any case",
    ),
]


class ApiRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Nothing(ApiRequest):
    """Endpoints that take no parameters."""


class ListSchedules(ApiRequest):
    status: ScheduledJobStatus | None = None
    selector: StoredLabelSelector | None = None
    search: SearchText | None = None
    limit: Limit = 50
    cursor: CursorText | None = None
    count: bool = Field(
        default=True, description="false: leave `total` null (a count reads every match)"
    )


class ScheduleRef(ApiRequest):
    scheduled_job_id: Identifier


class DescribeSchedule(ScheduleRef):
    include_runs: bool = True
    limit: Limit = 50


class PreviewSchedule(ScheduleRef):
    count: int = Field(default=10, ge=1, le=100)
    after: UtcDatetime | None = Field(default=None, description="from this moment; default now")


class ExplainSchedule(ScheduleRef):
    """Why each slot of a scheduled job in `[start, end)` fired, moved, merged or did not run."""

    start: UtcDatetime | None = Field(
        default=None, description="the first nominal instant, included; default a day before end"
    )
    end: UtcDatetime | None = Field(
        default=None, description="the range's end, excluded; default now"
    )


class PauseSchedule(ScheduleRef):
    reason: Reason = None


class CreateSchedule(ApiRequest):
    spec: ScheduledJob
    unchecked: bool = Field(
        default=False, description="skip the check against the scrapers runners advertise"
    )


class ReplaceSchedule(CreateSchedule):
    scheduled_job_id: Identifier


class Backfill(ScheduleRef):
    """The past slots of a scheduled job in `[start, end]` that never ran, run now."""

    start: UtcDatetime = Field(description="the first instant of the range, included")
    end: UtcDatetime = Field(description="the last instant, included; not in the future")
    dry_run: bool = Field(default=False, description="report the slots, publish nothing")


class BackfillRange(ApiRequest):
    """The body of `POST /scheduled-jobs/{id}/backfill`."""

    start: UtcDatetime = Field(description="the first instant of the range, included")
    end: UtcDatetime = Field(description="the last instant, included; not in the future")
    dry_run: bool = Field(default=False, description="report the slots, publish nothing")


class ScheduleStats(ScheduleRef):
    hours: int = Field(default=24, ge=1, le=24 * 14, description="recent UTC hours")


class ListJobs(ApiRequest):
    scheduled_job_id: Identifier | None = None
    status: JobStatus | None = None
    trigger: Trigger | None = None
    since: UtcDatetime | None = Field(default=None, description="created at or after")
    until: UtcDatetime | None = Field(default=None, description="created before")
    limit: Limit = 50
    cursor: CursorText | None = None
    offset: Offset = 0


class JobRef(ApiRequest):
    job_id: JobId


class CancelJob(JobRef):
    reason: Reason = None
    by: str = Field(
        default="nats", max_length=100, description="who asks; kept as the job's cancelled_by"
    )


class RetryJob(JobRef):
    priority: Priority = Priority.IMMEDIATE


class BulkCancel(ApiRequest):
    """Jobs by id, or every job not yet final (pending or running) of the scheduled jobs whose
    labels match a selector: one of the two, at most `MAX_BULK_CANCEL` jobs. The body of
    `POST /api/v1/jobs/cancel`."""

    model_config = ConfigDict(json_schema_extra=exactly_one_of("ids", "selector"))

    ids: list[JobId] | None = Field(default=None, max_length=MAX_BULK_CANCEL)
    selector: LabelSelector | None = None
    reason: Reason = None

    @model_validator(mode="after")
    def _one_choice(self) -> "BulkCancel":
        if (self.ids is None) == (self.selector is None):
            raise ValueError("give ids or selector, not both")
        return self


class BulkCancelJobs(BulkCancel):
    by: str = Field(
        default="nats", max_length=100, description="who asks; kept as each job's cancelled_by"
    )
