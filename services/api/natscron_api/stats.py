"""Run statistics from the `job_stats` documents (`natscron_shared.contract.job_stats`):
one scope's all-time document and its hourly ones, and periods added up."""

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from natscron_shared.contract.job_stats import ALL_TIME, COUNTERS, hour_period, stats_id
from natscron_shared.contract.storage import Document, JobStatsDocument
from natscron_shared.runtime.mongo import job_stats

SUMMED = (*COUNTERS, "duration_ms_sum", "duration_count", "items_scraped", "items_saved")


async def stats_of(
    db: AsyncDatabase[Document], scope: str, hours: int, now: datetime
) -> tuple[JobStatsDocument | None, dict[str, JobStatsDocument]]:
    """The all-time document of `scope` and those of its last `hours` UTC hours (the current
    one included) that had runs, oldest first."""
    periods = [hour_period(now - timedelta(hours=back)) for back in reversed(range(hours))]
    wanted = [stats_id(scope, ALL_TIME), *(stats_id(scope, p) for p in periods)]
    docs = {doc["_id"]: doc for doc in await job_stats(db).find({"_id": {"$in": wanted}}).to_list()}
    hourly = {p: docs[stats_id(scope, p)] for p in periods if stats_id(scope, p) in docs}
    return docs.get(stats_id(scope, ALL_TIME)), hourly


def merge_stats(docs: Iterable[JobStatsDocument]) -> dict[str, Any]:
    """`job_stats` documents added up: counters only grow, so periods merge by adding."""
    merged: dict[str, Any] = dict.fromkeys(SUMMED, 0)
    buckets: dict[str, int] = {}
    for doc in docs:
        for name in SUMMED:
            merged[name] += doc.get(name, 0)
        for index, count in doc.get("duration_buckets", {}).items():
            buckets[index] = buckets.get(index, 0) + count
        for name, pick in (("duration_ms_min", min), ("duration_ms_max", max)):
            value = doc.get(name)
            if value is not None:
                merged[name] = value if merged.get(name) is None else pick(merged[name], value)
    merged["duration_buckets"] = buckets
    return merged
