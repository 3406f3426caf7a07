"""The recorder's prometheus metrics, on the service's own registry."""

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram

WRITE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)


@dataclass(frozen=True)
class RecorderMetrics:
    messages: Counter
    bad_messages: Counter
    mongo_errors: Counter
    nats_errors: Counter
    write_duration: Histogram

    @classmethod
    def on(cls, registry: CollectorRegistry) -> "RecorderMetrics":
        return cls(
            messages=Counter(
                "natscron_recorder_messages_total",
                "Messages written, by kind (job_event, schedule_event, items, schedule_spec)"
                " and outcome (applied, duplicate: the stored state was already as new)",
                ["kind", "outcome"],
                registry=registry,
            ),
            bad_messages=Counter(
                "natscron_recorder_bad_messages_total",
                "Messages and KV values that could not be parsed or stored, skipped for good",
                ["reason"],
                registry=registry,
            ),
            mongo_errors=Counter(
                "natscron_recorder_mongo_errors_total",
                "MongoDB writes that failed and will be retried",
                registry=registry,
            ),
            nats_errors=Counter(
                "natscron_recorder_nats_errors_total",
                "NATS operations that failed, by operation (fetch, ack, watch)",
                ["operation"],
                registry=registry,
            ),
            write_duration=Histogram(
                "natscron_recorder_write_duration_seconds",
                "Time to store one message in MongoDB, by kind",
                ["kind"],
                buckets=WRITE_BUCKETS,
                registry=registry,
            ),
        )
