"""The ticker's prometheus metrics, on the service's own registry."""

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LAG_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 300, 3600)
SLOTS_FIRED_TOTAL = "natscron_ticker_slots_fired_total"
"""Also answered as `slots_fired` on `natscron.ticker.status`."""


@dataclass(frozen=True)
class TickerMetrics:
    leader: Gauge
    lease_changes: Counter
    schedules: Gauge
    slots_fired: Counter
    slots_duplicate: Counter
    slots_skipped: Counter
    decisions: Counter
    fire_lag: Histogram
    backfill_slots: Counter
    bad_schedules: Counter
    bad_last_runs: Counter
    nats_errors: Counter
    takeovers: Counter
    takeover_seconds: Gauge
    chain_decisions: Counter
    chain_runs: Counter
    bad_chain_finishes: Counter

    @classmethod
    def on(cls, registry: CollectorRegistry) -> "TickerMetrics":
        return cls(
            leader=Gauge(
                "natscron_ticker_leader", "1 while this ticker holds the lease", registry=registry
            ),
            lease_changes=Counter(
                "natscron_ticker_lease_changes_total",
                "Leases acquired and lost",
                ["event"],
                registry=registry,
            ),
            schedules=Gauge(
                "natscron_ticker_schedules", "Scheduled jobs known from KV", registry=registry
            ),
            slots_fired=Counter(SLOTS_FIRED_TOTAL, "Slots published as jobs", registry=registry),
            slots_duplicate=Counter(
                "natscron_ticker_slots_duplicate_total",
                "Slots JetStream already had (published by a previous leader)",
                registry=registry,
            ),
            slots_skipped=Counter(
                "natscron_ticker_slots_skipped_total",
                "Due slots left unfired, by decision kind: catchup_merged, catchup_dropped"
                " (missed slots, per the catchup policy), max_runs_reached",
                ["kind"],
                registry=registry,
            ),
            decisions=Counter(
                "natscron_ticker_decisions_total",
                "Decision records published (why slots did not fire as scheduled), by kind",
                ["kind"],
                registry=registry,
            ),
            fire_lag=Histogram(
                "natscron_ticker_fire_lag_seconds",
                "Time from a slot to its publication",
                buckets=LAG_BUCKETS,
                registry=registry,
            ),
            backfill_slots=Counter(
                "natscron_ticker_backfill_slots_total",
                "Slots of accepted backfills: published, or existing (they already had a run)",
                ["result"],
                registry=registry,
            ),
            bad_schedules=Counter(
                "natscron_ticker_bad_schedules_total",
                "KV scheduled_jobs values that are not valid scheduled jobs",
                registry=registry,
            ),
            bad_last_runs=Counter(
                "natscron_ticker_bad_last_runs_total",
                "KV last_runs values that are not records of a run's end",
                registry=registry,
            ),
            nats_errors=Counter(
                "natscron_ticker_nats_errors_total",
                "NATS operations that failed, by operation",
                ["operation"],
                registry=registry,
            ),
            takeovers=Counter(
                "natscron_ticker_takeovers_total",
                "Terms as leader begun: every job put on the agenda",
                registry=registry,
            ),
            takeover_seconds=Gauge(
                "natscron_ticker_takeover_seconds",
                "How long this ticker's last takeover took to put every job on its agenda",
                registry=registry,
            ),
            chain_decisions=Counter(
                "natscron_ticker_chain_decisions_total",
                "Ends of parents' runs decided on, per child: a chained run fired, held or"
                " dropped (a paused child)",
                ["decision"],
                registry=registry,
            ),
            chain_runs=Counter(
                "natscron_ticker_chain_runs_total",
                "Chained runs stored (not counting a duplicate JetStream dropped)",
                registry=registry,
            ),
            bad_chain_finishes=Counter(
                "natscron_ticker_bad_chain_finishes_total",
                "CHAINS messages and KV chain_state values that could not be read",
                ["reason"],
                registry=registry,
            ),
        )
