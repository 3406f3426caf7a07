"""Cost of the statistics windows: reading and merging up to 720 hourly `job_stats`
documents (the 30-day window of `GET /api/v1/scheduler/metrics`).

Every hour of the last 30 days gets a system-wide document as the recorder leaves it,
its duration sketch filled by `--runs-per-hour` runs of log-normally spread durations
(median 5 s, a wide spread, so each hour holds hundreds of sketch buckets: the worst
case for merging). Each sample is the API's work: one `_id $in` query for the all-time
document and the 720 hours (`stats_of`), then the four windows merged (`windows`).
Run: `.venv/bin/python bench/stats_windows.py --runs-per-hour 60 3600`.
"""

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from natscron.embedded import start_mongo
from natscron_api.stats import LONGEST_WINDOW_HOURS, stats_of, windows
from natscron_shared.contract.job_stats import (
    SYSTEM_SCOPE,
    duration_bucket,
    hour_period,
    stats_id,
)
from natscron_shared.contract.storage import JobStatsDocument
from natscron_shared.runtime.mongo import database_of, job_stats, new_client

SAMPLES = 20
NOW = datetime(2026, 11, 25, 17, 30, tzinfo=UTC)


def hour_document(period: str, runs: int, rng: random.Random) -> JobStatsDocument:
    durations = [round(rng.lognormvariate(8.5, 1.5)) for _ in range(runs)]
    return {
        "_id": stats_id(SYSTEM_SCOPE, period),
        "scope": SYSTEM_SCOPE,
        "period": period,
        "runs": runs,
        "completed": runs,
        "duration_ms_sum": sum(durations),
        "duration_count": runs,
        "duration_ms_min": min(durations),
        "duration_ms_max": max(durations),
        "duration_sketch": {str(k): n for k, n in Counter(map(duration_bucket, durations)).items()},
    }


async def bench(runs_per_hour: list[int]) -> None:
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        mongo = await start_mongo(Path(tmp))
        client = new_client(mongo.url)
        db = database_of(client)
        try:
            print(f"{'runs/hour':>10}  {'buckets/doc':>11}  {'read ms':>8}  {'merge ms':>8}")
            for runs in runs_per_hour:
                await db.drop_collection("job_stats")
                hours = [hour_period(NOW - timedelta(hours=h)) for h in range(LONGEST_WINDOW_HOURS)]
                docs = [hour_document(period, runs, rng) for period in hours]
                await job_stats(db).insert_many(docs)
                reads, merges = [], []
                for _ in range(SAMPLES):
                    started = time.perf_counter()
                    _, hourly = await stats_of(db, SYSTEM_SCOPE, LONGEST_WINDOW_HOURS, NOW)
                    read = time.perf_counter()
                    shown = windows(hourly, NOW)
                    reads.append((read - started) * 1000)
                    merges.append((time.perf_counter() - read) * 1000)
                assert shown["last_30d"].runs == runs * LONGEST_WINDOW_HOURS
                buckets = statistics.fmean(len(doc["duration_sketch"]) for doc in docs)
                print(
                    f"{runs:>10,}  {buckets:>11.0f}  {statistics.median(reads):>8.1f}"
                    f"  {statistics.median(merges):>8.1f}",
                    flush=True,
                )
        finally:
            await client.close()
            await mongo.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs-per-hour", type=int, nargs="+", default=[60, 3_600])
    asyncio.run(bench(parser.parse_args().runs_per_hour))


if __name__ == "__main__":
    main()
