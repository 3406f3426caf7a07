"""The `job_stats` documents: run statistics kept as runs finish, readable in one query.

One document per (scope, period): scope is a scheduled job's id, `ADHOC_SCOPE` for runs
without one, or `SYSTEM_SCOPE` for all runs; period is `ALL_TIME` or the UTC hour the
runs finished in (`2026-11-25T17`). Counters only ever grow, so documents of several
periods or scopes merge by adding them; durations go into fixed buckets, from which a
percentile is read with the accuracy of its bucket.
"""

from bisect import bisect_left
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

SYSTEM_SCOPE = "*"
ADHOC_SCOPE = "adhoc"
ALL_TIME = "all"
DURATION_BUCKETS_MS: tuple[int, ...] = (
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000,
    60_000, 120_000, 300_000, 600_000, 1_800_000, 3_600_000,
)  # fmt: skip
"""Upper bounds; one more bucket (index len) holds everything longer."""
COUNTERS = ("runs", "completed", "failed", "cancelled", "skipped")


def hour_period(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H")


def stats_id(scope: str, period: str) -> str:
    return f"{scope}|{period}"


def duration_bucket(duration_ms: int) -> int:
    """The index of the bucket `duration_ms` falls in."""
    return bisect_left(DURATION_BUCKETS_MS, duration_ms)


def percentile_ms(buckets: Sequence[int], quantile: float) -> int | None:
    """The upper bound of the bucket holding the `quantile` (0..1) of the durations; the
    last bound for the open-ended bucket; None without durations."""
    total = sum(buckets)
    if total == 0:
        return None
    rank = quantile * total
    seen = 0
    for index, count in enumerate(buckets):
        seen += count
        if seen >= rank and count:
            return DURATION_BUCKETS_MS[min(index, len(DURATION_BUCKETS_MS) - 1)]
    return DURATION_BUCKETS_MS[-1]


def bucket_counts(document: Mapping[str, Any]) -> list[int]:
    stored = document.get("duration_buckets", {})
    return [int(stored.get(str(i), 0)) for i in range(len(DURATION_BUCKETS_MS) + 1)]


def summary(document: Mapping[str, Any]) -> dict[str, Any]:
    """Counters plus what is derived from them: success rate, mean and p95 duration."""
    counts = {name: int(document.get(name, 0)) for name in COUNTERS}
    timed = int(document.get("duration_count", 0))
    return {
        **counts,
        "success_rate": counts["completed"] / counts["runs"] if counts["runs"] else None,
        "duration_ms_mean": document.get("duration_ms_sum", 0) / timed if timed else None,
        "duration_ms_min": document.get("duration_ms_min"),
        "duration_ms_max": document.get("duration_ms_max"),
        "duration_ms_p95": percentile_ms(bucket_counts(document), 0.95),
        "items_scraped": int(document.get("items_scraped", 0)),
        "items_saved": int(document.get("items_saved", 0)),
    }
