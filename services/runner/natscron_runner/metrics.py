"""The runner's prometheus metrics, on the service's own registry."""

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

DURATION_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600)


@dataclass(frozen=True)
class RunnerMetrics:
    jobs: Counter
    running: Gauge
    duration: Histogram
    bad_messages: Counter
    items_scraped: Counter
    items_skipped: Counter
    pages_skipped: Counter
    metadata_refused: Counter
    nats_errors: Counter
    redelivered: Counter
    deferred: Counter
    cancel_requests: Counter
    cancelled: Counter
    skipped: Counter
    claims: Counter
    replacements: Counter
    screenshots: Counter
    progress_acks: Counter

    @classmethod
    def on(cls, registry: CollectorRegistry) -> "RunnerMetrics":
        return cls(
            jobs=Counter(
                "natscron_runner_jobs_total",
                "Job messages by outcome: completed, failed, retried, cancelled, skipped,"
                " handed_back",
                ["status"],
                registry=registry,
            ),
            running=Gauge("natscron_runner_running", "Jobs running now", registry=registry),
            duration=Histogram(
                "natscron_runner_job_duration_seconds",
                "Duration of finished job attempts",
                buckets=DURATION_BUCKETS,
                registry=registry,
            ),
            bad_messages=Counter(
                "natscron_runner_bad_messages_total",
                "Run requests that could not be parsed, terminated without running",
                ["reason"],
                registry=registry,
            ),
            items_scraped=Counter(
                "natscron_runner_items_scraped_total",
                "Items scraped and published",
                registry=registry,
            ),
            items_skipped=Counter(
                "natscron_runner_items_skipped_total",
                "Items left out, by reason (missing_key, too_large)",
                ["reason"],
                registry=registry,
            ),
            pages_skipped=Counter(
                "natscron_runner_pages_skipped_total",
                "Pages a scrape left out, by reason (robots_txt, http_<status>, not_html,"
                " redirect, interrupted)",
                ["reason"],
                registry=registry,
            ),
            metadata_refused=Counter(
                "natscron_runner_metadata_refused_total",
                "Scraper metadata not stored with its run, by reason (not_json, too_large,"
                " unstorable): the run keeps only why",
                ["reason"],
                registry=registry,
            ),
            nats_errors=Counter(
                "natscron_runner_nats_errors_total",
                "NATS operations that failed, by operation (fetch, publish, claim, cancel)",
                ["operation"],
                registry=registry,
            ),
            redelivered=Counter(
                "natscron_runner_redelivered_total",
                "Run requests delivered again (a hand-back, a runner that died): the same"
                " attempt runs again, it does not count as a retry",
                registry=registry,
            ),
            deferred=Counter(
                "natscron_runner_deferred_total",
                "Run requests handed back unrun, by reason: not_before (a retry still in its"
                " backoff), claimed (its previous delivery still holds the schedule claim)",
                ["reason"],
                registry=registry,
            ),
            cancel_requests=Counter(
                "natscron_runner_cancel_requests_total",
                "jobs.cancel requests answered, by outcome: where the job was found (running,"
                " queued, finished, unknown) or the error code",
                ["outcome"],
                registry=registry,
            ),
            cancelled=Counter(
                "natscron_runner_cancelled_total",
                "Jobs this runner ended cancelled, by stage: running (the scrape was stopped),"
                " queued (taken after the cancel, never run)",
                ["stage"],
                registry=registry,
            ),
            skipped=Counter(
                "natscron_runner_skipped_total",
                "Jobs ended skipped, by reason: overlap (forbid: another run of the schedule"
                " holds its claim), replace_timeout (replace: the run to replace did not stop)",
                ["reason"],
                registry=registry,
            ),
            claims=Counter(
                "natscron_runner_claims_total",
                "KV running claims, by kind (job, schedule) and outcome: taken, released,"
                " lapsed (found expired at renewal, taken again), lost (another run holds it)",
                ["kind", "outcome"],
                registry=registry,
            ),
            replacements=Counter(
                "natscron_runner_replacements_total",
                "replace policy: how the run being replaced let go of its schedule claim:"
                " released (it stopped), lapsed (its runner was dead), timeout",
                ["outcome"],
                registry=registry,
            ),
            screenshots=Counter(
                "natscron_runner_screenshots_total",
                "Screenshots of failed browser scrapes, by outcome: kept (in KV screenshots),"
                " too_large, failed (NATS refused it, e.g. the bucket is full)",
                ["outcome"],
                registry=registry,
            ),
            progress_acks=Counter(
                "natscron_runner_progress_acks_total",
                "Progress acks of running jobs' messages, by outcome: sent, failed, late (the"
                " event loop stalled past the ack wait: another runner may have the job too),"
                " overrun (the job outlived its timeout: its message is let go)",
                ["outcome"],
                registry=registry,
            ),
        )
