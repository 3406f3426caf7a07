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
    nats_errors: Counter

    @classmethod
    def on(cls, registry: CollectorRegistry) -> "RunnerMetrics":
        return cls(
            jobs=Counter(
                "natscron_runner_jobs_total",
                "Job attempts by outcome: completed, failed, retried, handed_back",
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
            nats_errors=Counter(
                "natscron_runner_nats_errors_total",
                "NATS operations that failed, by operation (fetch, publish)",
                ["operation"],
                registry=registry,
            ),
        )
