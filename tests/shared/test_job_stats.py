"""The duration sketch of `job_stats`: a percentile never outside the observed min and max,
within the stated relative accuracy of the exact nearest-rank one, however the durations
are spread and however the documents holding them are split and merged."""

from collections import Counter
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from natscron_shared.contract.job_stats import (
    DURATION_SKETCH,
    LEGACY_DURATION_BUCKETS,
    RELATIVE_ACCURACY,
    duration_bucket,
    merged_durations,
    percentile_ms,
    summary,
)

DAY_MS = 86_400_000
durations = st.one_of(
    st.lists(st.integers(0, 30 * DAY_MS), min_size=1, max_size=300),  # anything
    st.lists(st.integers(0, 50), min_size=1, max_size=300),  # short runs, zeros among them
    st.lists(st.sampled_from([1, 1500, 1501, 2_000_000]), min_size=1, max_size=300),  # ties
    st.lists(  # heavy tail: most runs quick, a few very slow
        st.one_of(st.integers(90, 110), st.integers(DAY_MS // 2, DAY_MS)), min_size=1, max_size=300
    ),
)


def document_of(values: list[int]) -> dict[str, Any]:
    """What the recorder's `$inc`, `$min` and `$max` leave for these durations."""
    return {
        "duration_count": len(values),
        "duration_ms_sum": sum(values),
        "duration_ms_min": min(values),
        "duration_ms_max": max(values),
        DURATION_SKETCH: {str(k): n for k, n in Counter(map(duration_bucket, values)).items()},
    }


def merged(parts: list[list[int]]) -> dict[str, Any]:
    """Documents of several hours added up, as the API merges them."""
    docs = [document_of(part) for part in parts if part]
    values = [value for part in parts for value in part]
    return {
        "duration_ms_min": min(values),
        "duration_ms_max": max(values),
        **merged_durations(docs),
    }


def nearest_rank(values: list[int], percent: int) -> int:
    ordered = sorted(values)
    return ordered[max(1, -(-percent * len(ordered) // 100)) - 1]


@settings(max_examples=400, deadline=None)
@given(values=durations, percent=st.sampled_from([50, 90, 95, 99, 100]), cuts=st.data())
def test_a_percentile_is_within_the_observed_range_and_the_stated_accuracy(
    values: list[int], percent: int, cuts: st.DataObject
) -> None:
    points = sorted(cuts.draw(st.lists(st.integers(0, len(values)), max_size=4)))
    parts = [values[a:b] for a, b in zip([0, *points], [*points, len(values)], strict=True)]
    estimate = percentile_ms(merged(parts), percent)
    exact = nearest_rank(values, percent)

    assert estimate is not None
    assert min(values) <= estimate <= max(values)
    assert abs(estimate - exact) <= RELATIVE_ACCURACY * exact + 0.5, (estimate, exact)


@settings(max_examples=200, deadline=None)
@given(values=durations)
def test_the_summary_p95_never_exceeds_the_maximum(values: list[int]) -> None:
    shown = summary(document_of(values))
    assert shown["duration_ms_min"] <= shown["duration_ms_p95"] <= shown["duration_ms_max"]


def test_documents_from_before_the_sketch_read_their_old_buckets_clamped() -> None:
    """Old bounds `(100, 250]` and `(250, 500]`: a p95 of 250 or 500 before, never above
    the maximum now; runs recorded since add to the same percentile."""
    old = {"duration_ms_min": 120, "duration_ms_max": 200, LEGACY_DURATION_BUCKETS: {"4": 3}}
    assert percentile_ms(old, 95) == 200
    assert percentile_ms({**old, LEGACY_DURATION_BUCKETS: {"17": 2}}, 95) == 200  # open bucket

    since = {**old, "duration_ms_min": 5, DURATION_SKETCH: {str(duration_bucket(5)): 97}}
    assert percentile_ms(since, 95) == 5
    assert percentile_ms(since, 99) == 200


def test_no_durations_no_percentile() -> None:
    assert percentile_ms({}, 95) is None
    assert summary({"runs": 2, "skipped": 2})["duration_ms_p95"] is None
