"""Requests and responses of the API, as pydantic models (the OpenAPI document's schemas).

Document views (`ScheduledJobView`, `ExecutionView`) name the fields of the recorder's
documents (docs/architecture.md, section 5) and let further fields through, so a field a
newer recorder adds is shown without a change here.
"""

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from natscron_api.seed_fields import JobStatsFields, ListingFields, SchedulerMetricsFields
from natscron_shared.contract.attempts import AttemptRecord
from natscron_shared.contract.cancel import Found
from natscron_shared.contract.enums import JobStatus
from natscron_shared.contract.messages import JobEvent
from natscron_shared.contract.models import MAX_NOTE_CHARS, Identifier, LabelSelector
from natscron_shared.contract.schema_rules import exactly_one_of
from natscron_shared.contract.ticker_status import TickerStatus


class ErrorBody(BaseModel):
    code: str = Field(description="stable, machine-readable: `unknown_scheduled_job`, ...")
    message: str = Field(description="one sentence for people")


class ErrorResponse(BaseModel):
    """Every error answer: `{"error": {"code", "message"}}`."""

    error: ErrorBody

    @classmethod
    def of(cls, code: str, message: str) -> "ErrorResponse":
        return cls(error=ErrorBody(code=code, message=message))


class RecentRun(BaseModel):
    """One of the runs of a scheduled job that finished last (`recent_runs`)."""

    job_id: str
    status: str
    completed_at: datetime
    duration_ms: int | None = None


class ScheduledJobView(ListingFields, BaseModel):
    """A `scheduled_jobs` document: the spec mirrored from KV, its run history and next run."""

    model_config = ConfigDict(extra="allow")

    scheduled_job_id: str
    name: str | None = None
    description: str = ""
    status: str | None = None
    cron_expression: str | None = None
    interval: dict[str, float | str] | None = Field(
        default=None, description="days, hours, minutes, seconds, and `from`: start or last_run"
    )
    interval_minutes: float | None = None
    run_at: datetime | None = None
    timezone: str = "UTC"
    active_hours: dict[str, Any] | None = None
    start_at: datetime | None = None
    end_at: datetime | None = None
    jitter_seconds: float = 0.0
    max_runs: int | None = None
    after: list[dict[str, str]] = Field(
        default_factory=list,
        description="the schedules it runs after: scheduled_job_id, and on: success, failure"
        " or completion",
    )
    scraper: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    priority: str | None = None
    concurrency_policy: str | None = None
    max_retries: int | None = None
    retry_backoff_seconds: float | None = None
    timeout_seconds: float | None = None
    misfire_grace_seconds: float | None = None
    catchup: str | None = None
    failure_threshold: int | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    paused_reason: str | None = None
    paused_at: datetime | None = None
    run_count: int = 0
    last_run_at: datetime | None = None
    last_run_status: str | None = None
    last_run_job_id: str | None = None
    consecutive_failures: int = 0
    recent_runs: list[RecentRun] = Field(
        default_factory=list,
        description="the runs that finished last, newest first (at most 20): a run-history"
        " strip without a query per scheduled job",
    )
    next_run_at: datetime | None = None
    remaining_runs: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    deleted_at: datetime | None = None


class ExecutionView(ListingFields, BaseModel):
    """A `jobs` document: one execution, showing its newest attempt, then each one that
    ended and what the scraper reported (`attempts`, `metadata`: null in lists)."""

    model_config = ConfigDict(extra="allow")

    job_id: str
    scheduled_job_id: str | None = None
    status: str
    trigger: str | None = None
    priority: str | None = None
    attempt: int = 1
    created_at: datetime | None = None
    scheduled_for: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    duration_ms: int | None = None
    properties_scraped: int | None = None
    properties_saved: int | None = None
    skipped_pages: dict[str, int] | None = None
    scraper: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    runner_id: str | None = None
    error_message: str | None = None
    error_type: str | None = None
    cancelled_by: str | None = None
    retry_of: str | None = None
    chained_from: list[str] | None = Field(
        default=None, description="a chained run: the job ids of the parents' runs it ran after"
    )
    not_before: datetime | None = Field(
        default=None,
        description="pending after a failed attempt (attempt > 1): when the retry may start,"
        " once its backoff has passed",
    )
    updated_at: datetime | None = None
    metadata: dict[str, Any] | None = Field(
        default=None, description="what the scraper reported about the attempt that ended"
    )
    attempts: list[AttemptRecord] | None = Field(
        default=None,
        description="every attempt that ended, oldest first (at most max_retries + 1)",
    )


class ScheduledJobListItem(ScheduledJobView):
    """A scheduled job in a listing: the document, and its all-time success rate."""

    success_rate: float | None = Field(
        default=None, description="completed runs over finished runs, all time; null before a run"
    )


class ScheduledJobList(BaseModel):
    """Seed 001's `GET /scheduled-jobs`, plus the cursor of the next page."""

    scheduled_jobs: list[ScheduledJobListItem]
    total: int | None = Field(
        description="scheduled jobs matching the filters, over all pages; null when not"
        " counted (`count=false`)"
    )
    next_cursor: str | None = Field(
        default=None,
        description="pass as `cursor` for the next page; null on the last. A page may hold"
        " fewer than `limit` while one follows: a label selector reads a bounded stretch of"
        " ids per page",
    )


class ScheduledJobDetail(BaseModel):
    """Seed 001's `GET /scheduled-jobs/{id}`: the job and its runs, newest first."""

    scheduled_job: ScheduledJobView
    job_runs: list[ExecutionView]
    total_runs: int = Field(description="runs kept for this scheduled job")


class ExecutionList(BaseModel):
    """Seed 004's `ExecutionsListResponse`, plus the cursor of the next page."""

    executions: list[ExecutionView]
    total: int = Field(description="executions matching the filters, over all pages")
    next_cursor: str | None = None
    limit: int = Field(description="the page size asked for")
    offset: int = Field(description="runs skipped (after the cursor's position, if given)")


class Note(BaseModel):
    """An optional reason, kept with a pause or a cancel."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=MAX_NOTE_CHARS)


class ControlResult(BaseModel):
    scheduled_job_id: str
    outcome: Literal["paused", "resumed", "deleted", "unchanged", "not_found", "refused"]
    message: str


class BulkControl(BaseModel):
    """Scheduled jobs by id, or those whose labels match a selector: one of the two."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=exactly_one_of("ids", "selector"))

    ids: list[Identifier] | None = Field(default=None, max_length=10_000)
    selector: LabelSelector | None = None
    reason: str | None = Field(
        default=None, max_length=MAX_NOTE_CHARS, description="kept with a pause"
    )

    @model_validator(mode="after")
    def _one_choice(self) -> "BulkControl":
        if (self.ids is None) == (self.selector is None):
            raise ValueError("give ids or selector, not both")
        return self


class BulkControlResult(BaseModel):
    results: list[ControlResult]
    changed: int = Field(description="how many were paused, resumed or deleted")


class SpecWritten(BaseModel):
    scheduled_job: dict[str, Any] = Field(description="the spec as written to KV")
    created: bool = Field(description="false when it replaced an existing spec")
    revision: int = Field(description="its KV revision")


class StatsSummary(BaseModel):
    """Counters of finished runs plus what derives from them (`job_stats.summary`)."""

    runs: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    skipped: int = 0
    success_rate: float | None = None
    duration_ms_mean: float | None = None
    duration_ms_min: int | None = None
    duration_ms_max: int | None = None
    duration_ms_p95: int | None = Field(
        default=None,
        description="nearest-rank, within 1% of the exact value (runs recorded before"
        " natscron kept a sketch: within their old bucket), never outside min..max",
    )
    items_scraped: int = 0
    items_saved: int = 0


class HourlyStats(StatsSummary):
    period: str = Field(description="the UTC hour runs finished in: 2026-11-25T17")


class WindowedStats(BaseModel):
    """Statistics of all time and of the last whole UTC hours, the current one included."""

    all_time: StatsSummary
    last_1h: StatsSummary = Field(description="the current UTC hour so far")
    last_24h: StatsSummary = Field(description="24 UTC hours, the current one included")
    last_7d: StatsSummary = Field(description="168 UTC hours, the current one included")
    last_30d: StatsSummary = Field(description="720 UTC hours, the current one included")


class JobStats(JobStatsFields, WindowedStats):
    scheduled_job_id: str
    recent: StatsSummary = Field(description="the hours asked for, added up")
    hours: int
    hourly: list[HourlyStats] = Field(description="hours with runs, oldest first")
    last_execution: ExecutionView | None = None


class ScheduledJobCounts(BaseModel):
    total: int
    active: int
    paused: int
    inactive: int


class JobCounts(BaseModel):
    queued: int = Field(
        description="run requests waiting in stream JOBS (both lanes of every pool)"
    )
    running: int = Field(description="jobs a runner holds a claim on (KV running)")


class SchedulerMetrics(SchedulerMetricsFields, WindowedStats):
    scheduled_jobs: ScheduledJobCounts
    jobs: JobCounts
    adhoc_all_time: StatsSummary
    at: datetime


class FireTime(BaseModel):
    """A fire time in the schedule's own zone."""

    at: datetime = Field(description="UTC")
    local: str = Field(description="the wall time in the schedule's zone, ISO 8601 with offset")
    utc_offset: str = Field(description="the zone's offset from UTC then: +01:00, -04:00")
    offset_changed: bool = Field(
        description="the offset differs from the previous fire time's (the first: from the"
        " offset at the moment the preview starts from): a daylight-saving change lies between"
    )


class Preview(BaseModel):
    scheduled_job_id: str
    status: str
    fires: bool = Field(
        description="false while paused or inactive: the times are then hypothetical"
    )
    schedule: str | None = Field(
        description="the schedule in words; null for cron shapes not put into words"
    )
    timezone: str
    next_fire_times: list[datetime] = Field(
        description="UTC, jitter included; an interval `from: last_run` has only its next one,"
        " a period after its previous run finished (the later ones follow the ends of runs to"
        " come)"
    )
    remaining_runs: int | None = Field(description="what max_runs still allows; null: no limit")
    local_fire_times: list[FireTime] = Field(
        default_factory=list,
        description="the same times in the schedule's zone, daylight-saving changes marked",
    )


class SpecView(BaseModel):
    """A spec as KV `scheduled_jobs` holds it now: what the ticker follows."""

    scheduled_job: dict[str, Any] = Field(description="the spec")
    revision: int = Field(description="its KV revision")


class Whoami(BaseModel):
    """The caller, as its token says, and what a client needs to know to present the API."""

    name: str = Field(description="who the token names (`sub` of a JWT); anonymous when open")
    scopes: list[str] = Field(description="read, write: what the token may do")
    auth: Literal["bearer", "none"] = Field(description="none: the API is open to all")
    grafana_url: str | None = Field(description="NATSCRON_GRAFANA_URL, for links to dashboards")


class ConsumerLag(BaseModel):
    consumer: str
    stream: str
    pending: int = Field(description="messages not yet delivered (num_pending)")
    ack_pending: int = Field(description="delivered, not yet acknowledged")
    redelivered: int
    waiting_pulls: int


class SchedulerStatus(BaseModel):
    """Seed 002's daemon status, for a distributed scheduler."""

    leader: str | None = Field(description="the ticker that says it holds the lease")
    leader_since: datetime | None = Field(description="since when it holds it (its clock)")
    tickers: list[TickerStatus] = Field(
        description="the tickers that answered natscron.ticker.status, leading or not"
    )
    schedules_loaded: int = Field(description="specs in KV scheduled_jobs")
    lanes: list[ConsumerLag] = Field(
        description="runner lanes, two per runner pool: runner-<pool>-immediate,"
        " runner-<pool>-normal"
    )
    recorder: list[ConsumerLag] = Field(description="the recorder's consumers")
    runners: list[str] = Field(description="runners advertising scrapers now (KV scrapers)")
    scrapers: list[str]
    pools: dict[str, list[str]] = Field(
        default_factory=dict,
        description="the scrapers each runner pool with a live runner offers",
    )
    at: datetime


class DaemonStatus(BaseModel):
    """Seed 002's daemon status, from the tickers' answers on `natscron.ticker.status`."""

    running: bool = Field(description="a ticker holds the lease and fires slots")
    last_check: datetime | None = Field(
        description="when the leader last looked for due slots (its clock); it looks at each"
        " due slot and each schedule change, so an idle gap means no slot was due"
    )
    schedules_checked: int = Field(description="the schedules the leader follows; 0 without one")
    tasks_executed: int | None = Field(
        description="slots the tickers that answered published since each started; null if"
        " one of them is too old to say"
    )
    leader: str | None = Field(description="the ticker that leads")
    at: datetime


class Health(BaseModel):
    """Seed 004's `GET /health`."""

    status: Literal["ok"]


class CrawlerJobStatus(StrEnum):
    """Seed 004's job states, of a natscron scheduled job (docs/compatibility.md)."""

    PENDING = "pending"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    FAILED = "failed"


class CrawlerJob(ScheduledJobView):
    """A scheduled job as seed 004 lists its jobs: the document, with seed 004's `id`,
    `status` and `is_paused`, and natscron's own status as `schedule_status`."""

    id: str = Field(description="the scheduled job's id")
    status: CrawlerJobStatus = Field(
        description="running while a run of it runs; else paused, scheduled (active) or"
        " cancelled (inactive)"
    )
    schedule_status: str | None = Field(description="natscron's: active, paused or inactive")
    is_paused: bool


class CrawlerJobList(BaseModel):
    """Seed 004's `GET /api/v1/jobs`."""

    jobs: list[CrawlerJob]
    total: int = Field(description="jobs matching the filter, over all pages")
    limit: int
    offset: int


class JobCancelResult(BaseModel):
    job_id: str
    outcome: Found | Literal["failed"] = Field(
        description="where the runner that answered found the job (running and queued ones are"
        " cancelled), or failed: the request did not get through (`code` says why)"
    )
    message: str
    code: str | None = Field(default=None, description="the error code of a failed one")


class BulkCancelResult(BaseModel):
    results: list[JobCancelResult]
    cancelled: int = Field(description="how many were running or queued, and are cancelled")


class RunChange(BaseModel):
    """A run's status change as its event says (`JobEvent`), for live lists: the fields of
    a listed run (`ExecutionView`) an event knows, and when it happened."""

    job_id: str
    scheduled_job_id: str | None
    status: str
    attempt: int
    max_retries: int
    at: datetime = Field(description="when the status changed (the event's time)")
    trigger: str
    priority: str
    scraper: str
    created_at: datetime
    scheduled_for: datetime | None
    runner_id: str | None
    started_at: datetime | None
    completed_at: datetime | None
    duration_ms: int | None
    properties_scraped: int | None
    error_message: str | None
    error_type: str | None
    cancelled_by: str | None
    retry_of: str | None
    not_before: datetime | None = Field(description="a retry waiting for its backoff: until")

    @classmethod
    def of(cls, event: JobEvent) -> "RunChange":
        job = event.job
        return cls(
            job_id=job.job_id,
            scheduled_job_id=job.scheduled_job_id,
            status=event.status.value,
            attempt=event.attempt,
            max_retries=job.max_retries,
            at=event.at,
            trigger=job.trigger.value,
            priority=job.priority.value,
            scraper=job.scraper,
            created_at=job.created_at,
            scheduled_for=job.scheduled_for,
            runner_id=event.runner_id,
            started_at=event.started_at,
            completed_at=event.completed_at,
            duration_ms=event.duration_ms,
            properties_scraped=event.properties_scraped,
            error_message=event.error_message,
            error_type=event.error_type,
            cancelled_by=event.cancelled_by,
            retry_of=job.retry_of,
            not_before=job.not_before if event.status.rank == 0 else None,
        )

    @property
    def progress(self) -> tuple[int, int]:
        """Events of one job are ordered by (attempt, status rank)."""
        return self.attempt, JobStatus(self.status).rank
