"""Messages on the wire between the services (JSON of these models)."""

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from natscron_shared.contract.attempts import MAX_METADATA_BYTES, AttemptRecord
from natscron_shared.contract.enums import ConcurrencyPolicy, JobStatus, Priority, Trigger
from natscron_shared.contract.job_ids import scheduled_job_run_id
from natscron_shared.contract.models import Identifier, JobId, ScheduledJob
from natscron_shared.contract.pools import DEFAULT_POOL, PoolName
from natscron_shared.contract.schema_rules import exactly_one_of
from natscron_shared.timing.slot_fates import SlotMove, slot_move

MAX_MESSAGE_BYTES = 1024 * 1024


class RunRequest(BaseModel):
    """One attempt of a job to execute, published on `jobs.run.<pool>.<priority>` with
    `Nats-Msg-Id` = `msg_id` (the job id for attempt 1).

    The attempt number travels in the message, not in JetStream's delivery count: a
    hand-back (shutdown, a surplus fetch, a failed publish) redelivers the same attempt,
    and only a failure publishes a new message, for `attempt + 1`, that no runner starts
    before `not_before` (the retry backoff).
    """

    model_config = ConfigDict(frozen=True)

    job_id: str
    scheduled_job_id: str | None = None
    trigger: Trigger
    priority: Priority
    scheduled_for: AwareDatetime | None = None
    nominal_at: AwareDatetime | None = Field(
        default=None,
        description="the slot's nominal instant, when it fired elsewhere (`moved_by`): before"
        " its jitter, or the end of the DST gap its wall time fell in",
    )
    moved_by: tuple[SlotMove, ...] = Field(
        default=(),
        description="why a scheduled run fired away from the wall time it matches: dst_gap"
        " (a spring-forward gap skipped it), jitter",
    )
    created_at: AwareDatetime
    scraper: str
    params: dict[str, Any] = Field(default_factory=dict)
    pool: str = Field(
        default=DEFAULT_POOL,
        description="the runner pool that runs it, and its retries (checked where it is"
        " chosen: the spec, the trigger, the runner's settings)",
    )
    max_retries: int = 0
    retry_backoff_seconds: float = 30.0
    timeout_seconds: float = 3600.0
    concurrency_policy: ConcurrencyPolicy = ConcurrencyPolicy.ALLOW
    attempt: int = Field(default=1, ge=1, description="1 for the first run, n + 1 for a retry")
    not_before: AwareDatetime | None = Field(
        default=None, description="a retry waits for its backoff: no runner starts it earlier"
    )
    retry_of: str | None = Field(
        default=None, description="the failed or cancelled job this one runs again"
    )
    records_last_run: bool = Field(
        default=False,
        description="a scheduled run of an interval `from: last_run`: the runner puts its end"
        " in KV last_runs, and the schedule's next run counts from it",
    )
    chain_parent: bool = Field(
        default=False,
        exclude_if=lambda parent: not parent,
        description="a run of a schedule others run after (`after`): the runner publishes"
        " its end on chains.finished.<scheduled_job_id> for the ticker",
    )
    chained_from: list[str] | None = Field(
        default=None,
        exclude_if=lambda chained: chained is None,
        description="a chained run (`trigger: chain`): the job ids of the parents' runs it"
        " runs after",
    )

    @property
    def msg_id(self) -> str:
        """The job id for the first attempt (the ticker's), `<job_id>:<attempt>` after."""
        return self.job_id if self.attempt == 1 else f"{self.job_id}:{self.attempt}"


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
    skipped_pages: dict[str, int] | None = Field(
        default=None,
        description="pages the scrape left out, by reason (robots_txt, http_404, not_html,"
        " interrupted, ...); null when none was",
    )
    error_message: str | None = Field(
        default=None, description="why it failed, was retried, skipped or cancelled"
    )
    error_type: str | None = None
    cancelled_by: str | None = Field(
        default=None,
        description="who cancelled it (a `cancelled` event); the reason is in error_message",
    )
    ended_attempt: AttemptRecord | None = Field(
        default=None,
        description="the attempt this event ends: on a terminal event after a run its own,"
        " on a retry's `pending` event the one that failed",
    )
    metadata: dict[str, Any] | None = Field(
        default=None,
        description=f"what the scraper reported about the run (JSON, at most"
        f" {MAX_METADATA_BYTES} bytes), on the event that ends an attempt",
    )

    @property
    def msg_id(self) -> str:
        return f"{self.job.job_id}:{self.attempt}:{self.status.value}"


class ScheduleEvent(BaseModel):
    """The ticker's view of a scheduled job, on `scheduled_jobs.events.<id>`."""

    scheduled_job_id: str
    next_run_at: AwareDatetime | None
    at: AwareDatetime
    remaining_runs: int | None = Field(
        default=None, ge=0, description="runs `max_runs` still allows; null without a limit"
    )


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
    """`jobs.trigger`: run a scheduled job now, or an ad-hoc job (scraper + params). The JSON
    schema says one of the four targets; the model also takes `scheduled_job_id` and `job_id`
    together when they name the same scheduled job."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra=exactly_one_of("scheduled_job_id", "job_id", "scraper", "retry_of"),
    )

    scheduled_job_id: Identifier | None = None
    job_id: Identifier | None = Field(default=None, description="seed 001's name for the id")
    priority: Priority = Priority.IMMEDIATE
    scraper: Identifier | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    pool: PoolName | None = Field(
        default=None,
        description="the runner pool of an ad-hoc run; default: the pool its scraper is"
        " offered in (ignored for a scheduled job, which runs in its own)",
    )
    timeout_seconds: float = Field(default=3600.0, gt=0)
    max_retries: int = Field(default=0, ge=0, le=100)
    retry_of: JobId | None = Field(
        default=None,
        description="run this failed or cancelled job again, as a new job linked to it",
    )
    unchecked: bool = Field(
        default=False,
        description="queue an ad-hoc run without checking its scraper and params against the"
        " scraper catalogue; needed while no runner advertises (ignored for a scheduled job)",
    )
    force: bool = Field(
        default=False,
        description="run a paused or inactive scheduled job all the same (it stays paused);"
        " without it such a trigger is refused with `not_active`",
    )

    @model_validator(mode="after")
    def _one_target(self) -> "TriggerRequest":
        target = self.scheduled_job_id or self.job_id
        if self.scheduled_job_id and self.job_id and self.scheduled_job_id != self.job_id:
            raise ValueError("scheduled_job_id and job_id name different scheduled jobs")
        given = [target is not None, self.scraper is not None, self.retry_of is not None]
        if sum(given) != 1:
            raise ValueError(
                "give one of scheduled_job_id (or job_id), an ad-hoc scraper, or retry_of"
            )
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
    move: tuple[datetime, tuple[SlotMove, ...]] | None = None,
    chain_parent: bool = False,
    chained_from: list[str] | None = None,
) -> RunRequest:
    """The run request of one execution of `spec`; `move`: its slot's nominal instant and
    what moved it from there (`slot_move`); `chain_parent` when other schedules run after it
    (the ticker knows it from their specs)."""
    nominal_at, moved_by = (None, ()) if move is None else move
    return RunRequest(
        job_id=job_id,
        scheduled_job_id=spec.scheduled_job_id,
        trigger=trigger,
        priority=priority,
        scheduled_for=scheduled_for,
        nominal_at=nominal_at,
        moved_by=moved_by,
        created_at=created_at,
        scraper=spec.scraper,
        params=spec.params,
        pool=spec.pool or DEFAULT_POOL,
        max_retries=spec.max_retries,
        retry_backoff_seconds=spec.retry_backoff_seconds,
        timeout_seconds=spec.timeout_seconds,
        concurrency_policy=spec.concurrency_policy,
        records_last_run=trigger is Trigger.SCHEDULED and spec.counts_from_last_run,
        chain_parent=chain_parent,
        chained_from=chained_from,
    )


def slot_run_request(
    spec: ScheduledJob,
    slot: datetime,
    created_at: datetime,
    trigger: Trigger = Trigger.SCHEDULED,
    priority: Priority | None = None,
    chain_parent: bool = False,
) -> RunRequest:
    """The run of one slot of `spec`, under the job id (and so the msg id) that every
    publication of that slot gets, whoever makes it: JetStream stores it once. It says
    when its slot was moved from its wall time, and why (`slot_move`)."""
    return run_request_for(
        spec,
        job_id=scheduled_job_run_id(spec.scheduled_job_id, slot),
        trigger=trigger,
        priority=spec.priority if priority is None else priority,
        created_at=created_at,
        scheduled_for=slot,
        move=slot_move(spec, slot),
        chain_parent=chain_parent,
    )


def bad_message_reason(error: ValidationError) -> str:
    """Why a message could not be parsed, as a label for the bad-message counters."""
    types = {detail["type"] for detail in error.errors()}
    return "malformed_json" if "json_invalid" in types else "invalid_message"
