"""What polite fetching counts, on the runner's registry (or a private one)."""

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram

WAIT_BUCKETS = (0.001, 0.005, 0.025, 0.1, 0.5, 1, 5, 30, 120)


@dataclass(frozen=True)
class PoliteMetrics:
    waits: Histogram
    backoffs: Counter
    robots: Counter

    @classmethod
    def on(cls, registry: CollectorRegistry) -> "PoliteMetrics":
        return cls(
            waits=Histogram(
                "natscron_runner_polite_wait_seconds",
                "Time a request waited before it was sent: for the host's backoff, a request"
                " slot and its turn under the rate limit (robots.txt fetches included)",
                buckets=WAIT_BUCKETS,
                registry=registry,
            ),
            backoffs=Counter(
                "natscron_runner_host_backoffs_total",
                "429 and 503 answers, each of which holds every runner off the host",
                ["status"],
                registry=registry,
            ),
            robots=Counter(
                "natscron_runner_robots_fetches_total",
                "robots.txt fetches, by outcome: rules, none (4xx), unreachable (5xx, network)",
                ["outcome"],
                registry=registry,
            ),
        )
