"""Messages on the wire between the services (JSON of these models)."""

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from natscron_shared.enums import ConcurrencyPolicy, JobStatus, Priority, Trigger
from natscron_shared.models import Identifier, ScheduledJob

MAX_MESSAGE_BYTES = 1024 * 1024


class RunRequest(BaseModel):
    """A job to execute, published on `jobs.run.<priority>` with `Nats-Msg-Id: job_id`."""

    model_config = ConfigDict(frozen=True)

    job_id: str
    scheduled_job_id: str | None = None
    trigger: Trigger
    priority: Priority
    scheduled_for: AwareDatetime | None = None
    created_at: AwareDatetime
    scraper: str
    params: dict[str, Any] = Field(default_factory=dict)
    max_retries: int = 0
    retry_backoff_seconds: float = 30.0
    timeout_seconds: float = 3600.0
    concurrency_policy: ConcurrencyPolicy = ConcurrencyPolicy.ALLOW


class JobEvent(BaseModel):
    """A status change of one job, on `jobs.events.<job_id>`.

    Every event carries the whole request, so the recorder can build the document
    from whichever event arrives first. `(attempt, status.rank)` orders events.
    """

    job: RunRequest
    status: JobStatus
    attempt: int = Field(default=1, ge=1)
    at: AwareDatetime
    runner_id: str | None = None
    started_at: AwareDatetime | None = None
    completed_at: AwareDatetime | None = None
    duration_ms: int | None = None
    properties_scraped: int | None = None
    item_batches: int | None = None
    error_message: str | None = None
    error_type: str | None = None

    @property
    def msg_id(self) -> str:
        return f"{self.job.job_id}:{self.attempt}:{self.status.value}"


class ScheduleEvent(BaseModel):
    """The ticker's view of a scheduled job, on `scheduled_jobs.events.<id>`."""

    scheduled_job_id: str
    next_run_at: AwareDatetime | None
    at: AwareDatetime


class ScrapedItem(BaseModel):
    key: str = Field(min_length=1)
    data: dict[str, Any]


class ItemBatch(BaseModel):
    """Part of what one job scraped, on `items.<job_id>`; `batch` numbers from 0."""

    job_id: str
    scheduled_job_id: str | None = None
    batch: int = Field(ge=0)
    scraped_at: AwareDatetime
    items: list[ScrapedItem]

    @property
    def msg_id(self) -> str:
        return f"{self.job_id}:items:{self.batch}"


class TriggerRequest(BaseModel):
    """`jobs.trigger`: run a scheduled job now, or an ad-hoc job (scraper + params)."""

    model_config = ConfigDict(extra="forbid")

    scheduled_job_id: Identifier | None = None
    job_id: Identifier | None = Field(default=None, description="seed 001's name for the id")
    priority: Priority = Priority.IMMEDIATE
    scraper: Identifier | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    timeout_seconds: float = Field(default=3600.0, gt=0)
    max_retries: int = Field(default=0, ge=0, le=100)

    @model_validator(mode="after")
    def _one_target(self) -> "TriggerRequest":
        target = self.scheduled_job_id or self.job_id
        if self.scheduled_job_id and self.job_id and self.scheduled_job_id != self.job_id:
            raise ValueError("scheduled_job_id and job_id name different scheduled jobs")
        if (target is None) == (self.scraper is None):
            raise ValueError("give either scheduled_job_id (or job_id) or an ad-hoc scraper")
        return self

    @property
    def target(self) -> str | None:
        return self.scheduled_job_id or self.job_id


class TriggerReply(BaseModel):
    job_id: str
    status: Literal["pending"] = "pending"
    message: str
    created_at: datetime


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorReply(BaseModel):
    error: ErrorBody

    @classmethod
    def of(cls, code: str, message: str) -> "ErrorReply":
        return cls(error=ErrorBody(code=code, message=message))


def run_request_for(
    spec: ScheduledJob,
    *,
    job_id: str,
    trigger: Trigger,
    priority: Priority,
    created_at: datetime,
    scheduled_for: datetime | None,
) -> RunRequest:
    """The run request of one execution of `spec`."""
    return RunRequest(
        job_id=job_id,
        scheduled_job_id=spec.scheduled_job_id,
        trigger=trigger,
        priority=priority,
        scheduled_for=scheduled_for,
        created_at=created_at,
        scraper=spec.scraper,
        params=spec.params,
        max_retries=spec.max_retries,
        retry_backoff_seconds=spec.retry_backoff_seconds,
        timeout_seconds=spec.timeout_seconds,
        concurrency_policy=spec.concurrency_policy,
    )


def bad_message_reason(error: ValidationError) -> str:
    """Why a message could not be parsed, as a label for the bad-message counters."""
    types = {detail["type"] for detail in error.errors()}
    return "malformed_json" if "json_invalid" in types else "invalid_message"
