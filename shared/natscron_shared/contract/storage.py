"""The storage schema: MongoDB's collections, the documents in them and their indexes.

Only the recorder writes these documents (docs/architecture.md, section 5); the API, the
CLI, the migration and the benchmarks read them through these types, so a renamed field is
a type error rather than a `KeyError` at run time. Plain data, no driver: the client is
`natscron_shared.runtime.mongo` (the `mongo` extra of natscron-shared).

Documents are `TypedDict`s, as the driver hands them out (a `dict`); a field a document may
lack (one written by part of the recorder before the rest, or left out of a projection) is
not `Required`. Times are UTC, enums their string values.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NotRequired, Required, TypedDict

DEFAULT_DATABASE = "natscron"
"""The database when the MongoDB URL's path names none."""
SCHEDULED_JOBS = "scheduled_jobs"
JOBS = "jobs"
JOB_STATS = "job_stats"
ITEMS = "items"
MIGRATED_RUNS = "migrated_runs"
RECORDER_FLUSHES = "recorder_flushes"
DECISIONS = "decisions"

Document = dict[str, Any]
"""Any document, as the driver reads it: a legacy one, a query, an update."""

FINAL = 2**62
"""The `progress` of a terminal job: above every event's (`attempt * 3 + rank`), so no
event replaces what a final one wrote."""


class MigratedFrom(TypedDict):
    """Where `natscron migrate` found a schedule or a run (docs/migration.md)."""

    source: NotRequired[str]
    """`<store>:<collection or table>`, as `postgresql:job_executions`; absent on documents
    migrated before sources were named (all of them from the legacy MongoDB `jobs`)."""
    legacy_id: str
    """The source's own id of the document or row, as text."""
    legacy_job_id: str | None
    """The source's job id, where it has one besides its primary key."""


class MigratedSchedule(MigratedFrom):
    at: datetime
    """When the schedule was first written to KV by a migration."""


# --- scheduled_jobs --------------------------------------------------------------------------


IntervalFields = TypedDict(
    "IntervalFields",
    {
        "days": float,
        "hours": float,
        "minutes": float,
        "seconds": float,
        "from": NotRequired[str],  # `start` or `last_run`; missing in specs mirrored before it
    },
)


class ActiveHoursFields(TypedDict):
    start: str
    """`"HH:MM:SS"`, like `end`."""
    end: str
    weekdays: list[int]
    """ISO weekdays, 1 = Monday."""


class WebhookFields(TypedDict):
    url: str
    on: list[str]
    secret: str | None


class RecentRunFields(TypedDict):
    """One of a scheduled job's `recent_runs` (`natscron_shared.contract.run_history`)."""

    job_id: str
    status: str
    completed_at: datetime
    duration_ms: int | None


class ChainLinkFields(TypedDict):
    scheduled_job_id: str
    on: str


class ScheduledJobDocument(TypedDict, total=False):
    """One per scheduled job: its spec mirrored from KV (as the JSON of `ScheduledJob`, but
    for moments, which stay dates), the mirror's bookkeeping, its run history and next run.
    Either the mirror or the run history may create it, so only the id is sure."""

    scheduled_job_id: Required[str]
    # the spec (`natscron_shared.contract.models.ScheduledJob`)
    name: str
    description: str
    status: str
    cron_expression: str | None
    interval: IntervalFields | None
    interval_minutes: float | None
    run_at: datetime | None
    timezone: str
    active_hours: ActiveHoursFields | None
    start_at: datetime | None
    end_at: datetime | None
    jitter_seconds: float
    max_runs: int | None
    after: list[ChainLinkFields]
    scraper: str
    params: dict[str, Any]
    pool: str | None
    priority: str
    concurrency_policy: str
    max_retries: int
    retry_backoff_seconds: float
    timeout_seconds: float
    misfire_grace_seconds: float
    catchup: str
    failure_threshold: int | None
    labels: dict[str, str]
    paused_reason: str | None
    paused_at: datetime | None
    webhooks: list[WebhookFields]
    # the mirror's bookkeeping
    kv_revision: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime
    """Set when the KV key is deleted (the document stays, `inactive`); gone if put again."""
    # the run history, advanced by one guarded update per recorder flush
    run_count: int
    last_run_at: datetime | None
    last_run_status: str | None
    last_run_job_id: str | None
    consecutive_failures: int
    last_completed_at: datetime | None
    last_failed_at: datetime | None
    recent_runs: list[RecentRunFields]
    """The runs that finished last, newest first, at most `run_history.RECENT_RUNS`."""
    # the next run, from the newest `ScheduleEvent`
    next_run_at: datetime | None
    remaining_runs: int | None
    next_run_computed_at: datetime
    applied_flushes: list[str]
    """The ids of the newest recorder flushes applied to the run history (bounded): the
    guard that makes applying a flush twice change nothing."""
    # a schedule `natscron migrate` brought over: it is never recreated once deleted in KV
    migrated_from: MigratedSchedule


# --- jobs --------------------------------------------------------------------------------------


class AttemptFields(TypedDict):
    """One ended attempt (`natscron_shared.contract.attempts.AttemptRecord`)."""

    attempt: int
    status: str
    runner_id: str | None
    started_at: datetime | None
    completed_at: datetime
    duration_ms: int | None
    error_type: str | None
    error_message: str | None
    traceback: str | None


class JobDocument(TypedDict, total=False):
    """One per job (execution), showing what its most advanced event says. An item batch
    counted before the job's first event creates it with the id, `scheduled_job_id`,
    `properties_saved` and `saved_batches` only."""

    job_id: Required[str]
    # the request, in every event
    scheduled_job_id: str | None
    trigger: str
    priority: str
    scheduled_for: datetime | None
    created_at: datetime
    scraper: str
    params: dict[str, Any]
    retry_of: str | None
    revision: int
    """How many times the recorder wrote the job: its writes are conditional on the
    revision they read, so two writers never overwrite each other's newer fields."""
    count_flush: str
    """The recorder flush that counts the job in its schedule's run history and the
    statistics: set by the write that made it final, so it is counted once."""
    finished_at: datetime
    """The moment the job counts at (its `completed_at`, else its final event's `at`)."""
    nominal_at: datetime | None
    """The slot's nominal instant, when the run was fired away from it (`moved_by`)."""
    moved_by: list[str]
    """Why: `dst_gap`, `jitter` (`natscron_shared.contract.messages.SlotMove`)."""
    chained_from: list[str]
    """A chained run (`trigger: chain`): the job ids of the parents' runs it ran after."""
    not_before: datetime | None
    """A retry's: no runner starts it before then (its backoff)."""
    # the most advanced event, by (attempt, status rank)
    status: str
    attempt: int
    progress: int
    """That order as one number, for the write guard; `FINAL` once terminal."""
    updated_at: datetime
    runner_id: str | None
    started_at: datetime | None
    completed_at: datetime | None
    duration_ms: int | None
    properties_scraped: int | None
    item_batches: int | None
    skipped_pages: dict[str, int] | None
    error_message: str | None
    error_type: str | None
    cancelled_by: str | None
    metadata: dict[str, Any] | None
    """A small JSON object about the run: what the scraper reported about the attempt that
    ended (`ScrapeContext.metadata`), or for a migrated run seed 003's and seed 004's
    `metadata`."""
    # every event that ended an attempt, folded by attempt number
    attempts: list[AttemptFields]
    """Oldest first, at most `max_retries + 1`; absent until an attempt has ended."""
    # the item batches
    properties_saved: int
    saved_batches: list[int]
    # a run `natscron migrate` brought over, with what its source kept of its outcome
    migrated_from: MigratedFrom
    error_details: dict[str, Any] | None
    """A JSON object: the source's structured error (seed 003's `error_details`, seed 004's
    stack trace)."""


# --- job_stats (`natscron_shared.contract.job_stats`) ----------------------------------------


class JobStatsDocument(TypedDict, total=False):
    """One per (scope, period), `_id` `"<scope>|<period>"`. A counter is there once it has
    grown; the duration fields once a run had a duration."""

    _id: Required[str]
    scope: Required[str]
    period: Required[str]
    runs: int
    completed: int
    failed: int
    cancelled: int
    skipped: int
    duration_ms_sum: int
    duration_count: int
    duration_ms_min: int
    duration_ms_max: int
    duration_sketch: dict[str, int]
    """Runs by the index (as a string) of their duration's bucket in the sketch."""
    duration_buckets: dict[str, int]
    """Before the sketch: runs by the index of a fixed bucket (read, no longer written)."""
    items_scraped: int
    items_saved: int
    applied_flushes: list[str]
    """As on `scheduled_jobs`: the newest recorder flushes added into the counters."""


# --- recorder_flushes --------------------------------------------------------------------------


class RecorderFlushDocument(TypedDict):
    """A recorder flush not yet applied: the jobs whose `count_flush` is its `_id` are
    written but maybe not yet counted. Deleted once counted; a flush whose recorder stopped
    refreshing `alive_at` is counted again from its jobs by any recorder."""

    _id: str
    owner: str
    opened_at: datetime
    alive_at: datetime


# --- items -------------------------------------------------------------------------------------


class ItemDocument(TypedDict):
    """One per scraped record `key`, across all scheduled jobs."""

    key: str
    data: dict[str, Any]
    scheduled_job_id: str | None
    """Of the latest writer, as `last_job_id`."""
    last_job_id: str
    last_seen_at: datetime
    """The `scraped_at` of the newest batch that held the key."""
    first_seen_at: datetime
    first_job_id: str


# --- migrated_runs -----------------------------------------------------------------------------


class MigratedRunDocument(TypedDict):
    """One per run `natscron migrate` brought over and counted in its schedule's run history
    and `job_stats`: written in the transaction that counts it, so it counts once, and kept
    when retention deletes the run, so a later migration never brings it back."""

    _id: str
    """The run's `job_id`."""
    scheduled_job_id: str
    counted_at: datetime


# --- decisions (`natscron_shared.contract.decisions`) ----------------------------------------


class DecisionDocument(TypedDict, total=False):
    """One per decision `key`: the fields of every record of it merged (a set field is never
    unset again), `_id` the key."""

    _id: Required[str]
    scheduled_job_id: Required[str]
    kind: Required[str]
    at: datetime
    after: datetime | None
    until: datetime | None
    slot: datetime | None
    slots: int | None
    job_id: str | None
    cause_job_id: str | None
    note: str | None
    starts_at: datetime
    """What it covers, from: `after`, `slot` or `at`, whichever it has first."""
    ends_at: datetime | None
    """...to: `until`, `slot` or `at`; null while a window is open. Retention deletes a
    decision by it, as a run by its creation."""


# --- indexes -----------------------------------------------------------------------------------

ASCENDING: Literal[1] = 1
DESCENDING: Literal[-1] = -1


@dataclass(frozen=True)
class Index:
    keys: tuple[tuple[str, Literal[1, -1]], ...]
    unique: bool = False


INDEXES: dict[str, tuple[Index, ...]] = {
    JOBS: (
        Index((("job_id", ASCENDING),), unique=True),
        Index((("scheduled_job_id", ASCENDING), ("created_at", DESCENDING))),
        # The failures of a schedule after a moment (the run history), and runs by status.
        Index(
            (("scheduled_job_id", ASCENDING), ("status", ASCENDING), ("completed_at", DESCENDING))
        ),
        Index((("created_at", DESCENDING),)),  # every run, newest first
        Index((("count_flush", ASCENDING),)),  # the jobs of a flush to count again
        Index((("scheduled_job_id", ASCENDING), ("scheduled_for", ASCENDING))),  # explain
    ),
    # A schedule's decisions ending after a moment (explain), or before one (retention).
    DECISIONS: (Index((("scheduled_job_id", ASCENDING), ("ends_at", ASCENDING))),),
    SCHEDULED_JOBS: (
        Index((("scheduled_job_id", ASCENDING),), unique=True),
        # A listing by status, page by page in id order (the API's bounded windows).
        Index((("status", ASCENDING), ("scheduled_job_id", ASCENDING))),
    ),
    # A recorder's own flushes (kept alive). Created with the others at start: SecantusDB
    # was seen failing to start after a SIGKILL right after it created a collection.
    RECORDER_FLUSHES: (Index((("owner", ASCENDING),)),),
    ITEMS: (Index((("key", ASCENDING),), unique=True),),
}
"""What every query and guarded upsert relies on. The unique ones are part of correctness:
a guarded upsert whose filter does not match becomes an insert that the unique index
rejects. SecantusDB is slow on unindexed queries, so every queried field is indexed;
`job_stats` is read by `_id` only."""
