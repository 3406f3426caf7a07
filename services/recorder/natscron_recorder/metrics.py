"""The recorder's prometheus metrics, on the service's own registry."""

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

WRITE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)
BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000)
WEBHOOK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
WEBHOOK_OUTCOMES = ("delivered", "failed_attempt", "gave_up", "missing_secret")


@dataclass(frozen=True)
class RecorderMetrics:
    messages: Counter
    bad_messages: Counter
    documents: Counter
    runs_finished: Counter
    held_events: Gauge
    schedule_runs: Counter
    batch_size: Histogram
    write_duration: Histogram
    mongo_errors: Counter
    mongo_available: Gauge
    nats_errors: Counter
    auto_paused: Counter
    webhook_deliveries: Counter
    webhook_duration: Histogram

    @classmethod
    def on(cls, registry: CollectorRegistry) -> "RecorderMetrics":
        return cls(
            messages=Counter(
                "natscron_recorder_messages_total",
                "Messages stored, by kind (job_event, schedule_event, items, decision,"
                " schedule_spec)",
                ["kind"],
                registry=registry,
            ),
            bad_messages=Counter(
                "natscron_recorder_bad_messages_total",
                "Messages and KV values that could not be parsed or stored, skipped for good",
                ["reason"],
                registry=registry,
            ),
            documents=Counter(
                "natscron_recorder_documents_written_total",
                "MongoDB documents written, by collection and kind of write (insert, update,"
                " upsert)",
                ["collection", "kind"],
                registry=registry,
            ),
            held_events=Gauge(
                "natscron_recorder_held_events",
                "Job events held (unacked) until their job ends or the hold time passes",
                registry=registry,
            ),
            runs_finished=Counter(
                "natscron_recorder_runs_finished_total",
                "Runs recorded as finished (each exactly once)",
                registry=registry,
            ),
            schedule_runs=Counter(
                "natscron_recorder_schedule_runs_total",
                "Finished runs of each scheduled job, by final status (completed, failed,"
                " cancelled): one series per scheduled job and status that occurred",
                ["scheduled_job_id", "status"],
                registry=registry,
            ),
            batch_size=Histogram(
                "natscron_recorder_batch_size",
                "Messages per batch written, by consumer",
                ["consumer"],
                buckets=BATCH_BUCKETS,
                registry=registry,
            ),
            write_duration=Histogram(
                "natscron_recorder_write_duration_seconds",
                "Time to store one batch in MongoDB, by consumer (schedule_spec: one KV value)",
                ["consumer"],
                buckets=WRITE_BUCKETS,
                registry=registry,
            ),
            mongo_errors=Counter(
                "natscron_recorder_mongo_errors_total",
                "MongoDB writes that failed and will be retried",
                registry=registry,
            ),
            mongo_available=Gauge(
                "natscron_recorder_mongo_available",
                "1 while the last MongoDB write succeeded",
                registry=registry,
            ),
            nats_errors=Counter(
                "natscron_recorder_nats_errors_total",
                "NATS operations that failed, by operation (fetch, ack, watch)",
                ["operation"],
                registry=registry,
            ),
            auto_paused=Counter(
                "natscron_recorder_schedules_auto_paused_total",
                "Scheduled jobs paused because their runs failed failure_threshold times in a row",
                registry=registry,
            ),
            webhook_deliveries=_webhook_deliveries(registry),
            webhook_duration=Histogram(
                "natscron_webhook_request_duration_seconds",
                "Time of one webhook call, from sending the request to its response status",
                buckets=WEBHOOK_BUCKETS,
                registry=registry,
            ),
        )


def _webhook_deliveries(registry: CollectorRegistry) -> Counter:
    counter = Counter(
        "natscron_webhook_deliveries_total",
        "Webhook deliveries by how they ended (delivered; gave_up: retries used up or a"
        " final 4xx; missing_secret: not sent), and failed calls that were retried"
        " (failed_attempt)",
        ["outcome"],
        registry=registry,
    )
    for outcome in WEBHOOK_OUTCOMES:
        counter.labels(outcome)
    return counter
