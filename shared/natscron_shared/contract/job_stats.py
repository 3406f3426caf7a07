"""The `job_stats` documents: run statistics kept as runs finish, readable in one query.

One document per (scope, period): scope is a scheduled job's id, `ADHOC_SCOPE` for runs
without one, or `SYSTEM_SCOPE` for all runs; period is `ALL_TIME` or the UTC hour the
runs finished in (`2026-11-25T17`). Counters only ever grow, so documents of several
periods or scopes merge by adding them.

Durations go into a sketch with relative accuracy (DDSketch's log-spaced buckets):
bucket `i` holds the durations in (γ^(i-1), γ^i] ms, γ = (1 + α) / (1 - α), and reads
back as 2γ^i / (γ + 1), which is within α of every duration in it. Stored sparse, index
to count, it merges by adding like the counters. A percentile is the reading of the
bucket holding the nearest-rank duration, so it is within α (plus the rounding to a
whole millisecond) of the exact one, and it is clamped to the observed min and max.
"""

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

SYSTEM_SCOPE = "*"
ADHOC_SCOPE = "adhoc"
ALL_TIME = "all"
COUNTERS = ("runs", "completed", "failed", "cancelled", "skipped")

RELATIVE_ACCURACY = 0.01
"""α: a percentile read from the sketch is within 1% of the exact one."""
GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
_LOG_GAMMA = math.log(GAMMA)
ZERO_INDEX = -1
"""The bucket of 0 ms: whole milliseconds from 1 have indexes from 0, so none is -1."""
DURATION_SKETCH = "duration_sketch"
"""The field holding the sketch: `duration_sketch.<index>` counts runs."""

LEGACY_DURATION_BUCKETS = "duration_buckets"
"""Before the sketch: runs by the index of a fixed bucket, read with its old bounds."""
LEGACY_BUCKET_BOUNDS_MS: tuple[int, ...] = (
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000,
    60_000, 120_000, 300_000, 600_000, 1_800_000, 3_600_000,
)  # fmt: skip
"""Upper bounds; one more bucket (index len) held everything longer."""
DURATION_COUNTS = (DURATION_SKETCH, LEGACY_DURATION_BUCKETS)
"""The fields of counts by bucket, added up key by key when documents merge."""


def hour_period(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H")


def stats_id(scope: str, period: str) -> str:
    return f"{scope}|{period}"


def duration_bucket(duration_ms: int) -> int:
    """The sketch index of a duration: ceil(log_γ(ms)); `ZERO_INDEX` for 0 ms."""
    if duration_ms <= 0:
        return ZERO_INDEX
    return math.ceil(math.log(duration_ms) / _LOG_GAMMA)


def duration_field(duration_ms: int) -> str:
    """The counter a run of this duration increments (`$inc`)."""
    return f"{DURATION_SKETCH}.{duration_bucket(duration_ms)}"


def bucket_value_ms(index: int) -> float:
    """What a sketch bucket reads as: within α of every duration it holds."""
    if index == ZERO_INDEX:
        return 0.0
    return 2 * GAMMA**index / (GAMMA + 1)


def _legacy_value_ms(index: int) -> float:
    """An old bucket reads as its upper bound, as before; the open one as unbounded, so
    that the clamp makes it the maximum."""
    if index < len(LEGACY_BUCKET_BOUNDS_MS):
        return float(LEGACY_BUCKET_BOUNDS_MS[index])
    return math.inf


def _durations(document: Mapping[str, Any]) -> list[tuple[float, int]]:
    """(value, count) of every bucket with runs, of the sketch and of legacy buckets."""
    sketch = document.get(DURATION_SKETCH) or {}
    legacy = document.get(LEGACY_DURATION_BUCKETS) or {}
    return [
        *((bucket_value_ms(int(i)), int(n)) for i, n in sketch.items() if n),
        *((_legacy_value_ms(int(i)), int(n)) for i, n in legacy.items() if n),
    ]


def _clamped(value: float, low: float | None, high: float | None) -> float:
    if low is not None:
        value = max(value, low)
    if high is not None:
        value = min(value, high)
    return value


def percentile_ms(document: Mapping[str, Any], percent: int) -> int | None:
    """The nearest-rank `percent` percentile of the document's durations, within α of the
    exact one (runs recorded before the sketch: within their old bucket), never outside
    [`duration_ms_min`, `duration_ms_max`]; None without durations."""
    low, high = document.get("duration_ms_min"), document.get("duration_ms_max")
    points = [(_clamped(value, low, high), count) for value, count in _durations(document)]
    total = sum(n for _, n in points)
    if total == 0:
        return None
    rank = max(1, -(-percent * total // 100))
    seen = 0
    for value, count in sorted(points):
        seen += count
        if seen >= rank:
            return round(value) if math.isfinite(value) else LEGACY_BUCKET_BOUNDS_MS[-1]
    raise AssertionError("the rank is at most the total")


def add_counts(into: dict[str, int], counts: Mapping[str, int]) -> None:
    """Bucket counts of another document added to `into`, key by key."""
    for index, count in counts.items():
        into[index] = into.get(index, 0) + int(count)


def merged_durations(documents: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """The bucket counts of `documents` added up, per field of `DURATION_COUNTS`."""
    merged: dict[str, dict[str, int]] = {name: {} for name in DURATION_COUNTS}
    for document in documents:
        for name in DURATION_COUNTS:
            add_counts(merged[name], document.get(name) or {})
    return merged


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
        "duration_ms_p95": percentile_ms(document, 95),
        "items_scraped": int(document.get("items_scraped", 0)),
        "items_saved": int(document.get("items_saved", 0)),
    }
