"""Cost of the recorder's run-history refresh as one schedule's runs pile up.

`refresh_run_history` recomputes `run_count` and `last_run_*` from the `jobs`
documents on every finished run (exact and self-healing); this measures what that
costs on the embedded SecantusDB at growing run counts.
Run: `.venv/bin/python bench/history.py --runs 1000 10000`.
"""

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from natscron.embedded import start_mongo
from natscron_recorder.history import refresh_run_history
from natscron_recorder.indexes import ensure_indexes
from natscron_recorder.mongo import database_of, new_client

REPEATS = 5
T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def bench(run_counts: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        mongo = await start_mongo(Path(tmp))
        client = new_client(mongo.url)
        db = database_of(client)
        await ensure_indexes(db)
        stored = 0
        print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; Mongo server: SecantusDB (embedded)")
        for target in sorted(run_counts):
            await db.jobs.insert_many(
                {
                    "job_id": f"run-{index}",
                    "scheduled_job_id": "one",
                    "status": "completed",
                    "created_at": T0 + timedelta(seconds=index),
                    "completed_at": T0 + timedelta(seconds=index),
                }
                for index in range(stored, target)
            )
            stored = target
            started = time.perf_counter()
            for _ in range(REPEATS):
                await refresh_run_history(db, "one")
            elapsed_ms = (time.perf_counter() - started) / REPEATS * 1000
            print(f"{target} runs of one schedule: {elapsed_ms:.0f} ms per refresh")
        await client.close()
        await mongo.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, nargs="+", default=[1000, 10000])
    asyncio.run(bench(parser.parse_args().runs))


if __name__ == "__main__":
    main()
