"""Every NATS name of the contract (docs/architecture.md), in one place."""

from typing import Final

from natscron_shared.contract.enums import Priority

# KV buckets
KV_SCHEDULED_JOBS: Final = "scheduled_jobs"
KV_TICKER_LEADER: Final = "ticker_leader"
KV_TICKER_STATE: Final = "ticker_state"
KV_RUNNING: Final = "running"
KV_CANCELS: Final = "cancels"
KV_SCRAPERS: Final = "scrapers"
KV_LAST_RUNS: Final = "last_runs"
KV_HOST_SLOTS: Final = "host_slots"
"""Polite fetching: the requests in flight per host, one key per slot (`<host>.<n>`)."""
KV_HOST_PACE: Final = "host_pace"
"""Polite fetching: when a host's next request may start, for a host with a rate limit."""
KV_HOST_BACKOFF: Final = "host_backoff"
"""Polite fetching: a host that answered 429 or 503, and until when every runner waits."""
KV_CHECKPOINTS: Final = "checkpoints"
"""A resumable scrape's state (the crawl's frontier), by job id: a retry resumes from it."""
KV_SCREENSHOTS: Final = "screenshots"
"""A failed browser scrape's JPEG of its page, by `<job_id>.<attempt>` (the API serves it)."""
KV_CHAIN_STATE: Final = "chain_state"
LEADER_KEY: Final = "leader"

# Streams
STREAM_JOBS: Final = "JOBS"
STREAM_EVENTS: Final = "EVENTS"
STREAM_ITEMS: Final = "ITEMS"
STREAM_DECISIONS: Final = "DECISIONS"
STREAM_CHAINS: Final = "CHAINS"

# Subjects
JOBS_RUN_PREFIX: Final = "jobs.run"
JOBS_RETRY_PREFIX: Final = "jobs.retry"
JOBS_EVENTS_PREFIX: Final = "jobs.events"
SCHEDULED_JOBS_EVENTS_PREFIX: Final = "scheduled_jobs.events"
ITEMS_PREFIX: Final = "items"
DECISIONS_PREFIX: Final = "decisions"
CHAINS_FINISHED_PREFIX: Final = "chains.finished"
JOBS_TRIGGER: Final = "jobs.trigger"
JOBS_BACKFILL: Final = "jobs.backfill"
JOBS_CANCEL: Final = "jobs.cancel"
API_PREFIX: Final = "natscron.api"
TICKER_PRESENCE_PREFIX: Final = "natscron.ticker.presence"
TICKER_STATUS: Final = "natscron.ticker.status"
"""Every ticker answers (no queue group): who leads, since when, what it follows."""

# Queue groups and durable consumers
TICKER_QUEUE: Final = "tickers"
RUNNER_QUEUE: Final = "runners"
RECORDER_EVENTS_CONSUMER: Final = "recorder-events"
RECORDER_ITEMS_CONSUMER: Final = "recorder-items"
RECORDER_DECISIONS_CONSUMER: Final = "recorder-decisions"
WEBHOOKS_CONSUMER: Final = "webhooks"
"""EVENTS, final job events: the recorder's webhook sender, apart from its recording."""
CHAINS_CONSUMER: Final = "ticker-chains"
"""CHAINS, the ends of parents' runs: pulled by the leading ticker only, one at a time."""


def run_subject(pool: str, priority: Priority) -> str:
    """`jobs.run.<pool>.<lane>`: a run request for the runners of one pool."""
    return f"{JOBS_RUN_PREFIX}.{pool}.{priority.value}"


def retry_subject(pool: str, priority: Priority) -> str:
    """`jobs.retry.<pool>.<lane>`: a runner's retry of a failed attempt, in the pool and lane
    of the attempt. The JOBS stream stores it as `jobs.run.<pool>.<lane>`
    (`jetstream_layout`), so only the ticker publishes run requests."""
    return f"{JOBS_RETRY_PREFIX}.{pool}.{priority.value}"


def runner_consumer(pool: str, priority: Priority) -> str:
    """Durable pull consumer shared by the runners of one pool for one lane."""
    return f"runner-{pool}-{priority.value}"


def legacy_run_subject(priority: Priority) -> str:
    """`jobs.run.<lane>`, from before pools: the default pool's consumers still read it, so
    what a deployment queued before its upgrade runs after it."""
    return f"{JOBS_RUN_PREFIX}.{priority.value}"


def legacy_retry_subject(priority: Priority) -> str:
    """`jobs.retry.<lane>`, from before pools (a runner not yet upgraded): stored as
    `jobs.run.<lane>`, which the default pool reads."""
    return f"{JOBS_RETRY_PREFIX}.{priority.value}"


def legacy_runner_consumer(priority: Priority) -> str:
    """`runner-<lane>`, from before pools: `provision` replaces it with the default pool's."""
    return f"runner-{priority.value}"


def scraper_key(pool: str, scraper: str) -> str:
    """KV `scrapers`: the entry of one scraper as the runners of one pool advertise it."""
    return f"{pool}.{scraper}"


def job_event_subject(job_id: str) -> str:
    return f"{JOBS_EVENTS_PREFIX}.{job_id}"


def scheduled_job_event_subject(scheduled_job_id: str) -> str:
    return f"{SCHEDULED_JOBS_EVENTS_PREFIX}.{scheduled_job_id}"


def chain_finished_subject(parent_id: str) -> str:
    """`chains.finished.<parent_id>`: a run of a schedule others run after has ended."""
    return f"{CHAINS_FINISHED_PREFIX}.{parent_id}"


def items_subject(job_id: str) -> str:
    return f"{ITEMS_PREFIX}.{job_id}"


def decision_subject(scheduled_job_id: str) -> str:
    """`decisions.<scheduled_job_id>`: why a slot of it did not fire as scheduled."""
    return f"{DECISIONS_PREFIX}.{scheduled_job_id}"


def running_job_key(job_id: str) -> str:
    """KV `running`: the claim of a job being run, renewed by its runner's heartbeat."""
    return f"job.{job_id}"


def schedule_claim_key(scheduled_job_id: str) -> str:
    """KV `running`: the one run of a `forbid` or `replace` schedule allowed at a time."""
    return f"schedule.{scheduled_job_id}"


def screenshot_key(job_id: str, attempt: int) -> str:
    """KV `screenshots`: the JPEG of the page an attempt of a browser scrape failed on."""
    return f"{job_id}.{attempt}"
