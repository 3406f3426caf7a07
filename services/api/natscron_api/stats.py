"""Run statistics from the `job_stats` documents (`natscron_shared.contract.job_stats`):
one scope's all-time document and its hourly ones, periods added up, and the windows of
the last hour, day, week and month.

A window is whole UTC hours, the current one included: `last_1h` is the current hour
so far, `last_30d` its 720 hours. The longest window reads at most 720 documents by `_id`,
and each window adds its hours up (`bench/stats_windows.py` measures both).
"""

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from natscron_api.views import StatsSummary
from natscron_shared.contract.job_stats import (
    ALL_TIME,
    COUNTERS,
    hour_period,
    merged_durations,
    stats_id,
    summary,
)
from natscron_shared.contract.storage import Document, JobStatsDocument
from natscron_shared.runtime.mongo import job_stats

SUMMED = (*COUNTERS, "duration_ms_sum", "duration_count", "items_scraped", "items_saved")
WINDOW_HOURS = {"last_1h": 1, "last_24h": 24, "last_7d": 7 * 24, "last_30d": 30 * 24}
LONGEST_WINDOW_HOURS = max(WINDOW_HOURS.values())
IDS_PER_QUERY = 24
"""SecantusDB's `$in` costs more than linearly in its ids: 720 at once took 340 ms, 30
queries of 24 took 58 ms (`bench/stats_windows.py`)."""


async def stats_of(
    db: AsyncDatabase[Document], scope: str, hours: int, now: datetime
) -> tuple[JobStatsDocument | None, dict[str, JobStatsDocument]]:
    """The all-time document of `scope` and those of its last `hours` UTC hours (the current
    one included) that had runs, oldest first. By `_id`, a day of hours per query."""
    periods = [hour_period(now - timedelta(hours=back)) for back in reversed(range(hours))]
    wanted = [stats_id(scope, ALL_TIME), *(stats_id(scope, p) for p in periods)]
    docs: dict[str, JobStatsDocument] = {}
    for start in range(0, len(wanted), IDS_PER_QUERY):
        chunk = wanted[start : start + IDS_PER_QUERY]
        docs.update({doc["_id"]: doc async for doc in job_stats(db).find({"_id": {"$in": chunk}})})
    hourly = {p: docs[stats_id(scope, p)] for p in periods if stats_id(scope, p) in docs}
    return docs.get(stats_id(scope, ALL_TIME)), hourly


def merge_stats(docs: Iterable[JobStatsDocument]) -> dict[str, Any]:
    """`job_stats` documents added up: counters only grow, so periods merge by adding."""
    docs = list(docs)
    merged: dict[str, Any] = dict.fromkeys(SUMMED, 0)
    for doc in docs:
        for name in SUMMED:
            merged[name] += doc.get(name, 0)
        for name, pick in (("duration_ms_min", min), ("duration_ms_max", max)):
            value = doc.get(name)
            if value is not None:
                merged[name] = value if merged.get(name) is None else pick(merged[name], value)
    merged.update(merged_durations(docs))
    return merged


def last_hours(
    hourly: dict[str, JobStatsDocument], hours: int, now: datetime
) -> dict[str, JobStatsDocument]:
    """The documents of `hourly` in the last `hours` UTC hours, the current one included.
    Periods sort as text in time order: a window is the periods from its first hour on."""
    first = hour_period(now - timedelta(hours=hours - 1))
    return {period: doc for period, doc in hourly.items() if period >= first}


def windows(hourly: dict[str, JobStatsDocument], now: datetime) -> dict[str, Any]:
    """The windows of `WindowedStats`, as its keyword arguments: each one's hours of
    `hourly` (which covers them all) added up."""
    return {
        name: StatsSummary(**summary(merge_stats(last_hours(hourly, hours, now).values())))
        for name, hours in WINDOW_HOURS.items()
    }
