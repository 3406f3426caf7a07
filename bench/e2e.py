"""End-to-end throughput and latency: ticker -> runner (noop) -> recorder -> MongoDB.

Offers `--schedules` scheduled jobs firing every second for `--seconds`, on the embedded
servers (nats-server + SecantusDB), and reports completed jobs per second and the
p50/p99 time from a slot to its `completed` document appearing in MongoDB (seen on a
change stream). Run: `.venv/bin/python bench/e2e.py --schedules 50 --seconds 60`.
"""

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from nats.aio.client import Client
from pymongo.asynchronous.database import AsyncDatabase

from natscron.embedded import start_mongo, start_nats
from natscron_recorder import RecorderService
from natscron_recorder.mongo import JOBS, Document, database_of, new_client
from natscron_runner import RunnerService
from natscron_shared.endpoints import Endpoints
from natscron_shared.jetstream_layout import jetstream_layout
from natscron_shared.lifecycle import Service
from natscron_shared.models import ScheduledJob
from natscron_shared.provision import provision
from natscron_shared.schedule_store import put_schedules
from natscron_shared.settings import Settings
from natscron_ticker import TickerService

WARM_UP_SECONDS = 2.0
DRAIN_SECONDS = 30.0


def _schedules(count: int) -> list[ScheduledJob]:
    return [
        ScheduledJob(
            scheduled_job_id=f"bench-{index:04d}",
            name=f"bench {index}",
            cron_expression="* * * * * *",
            scraper="noop",
            misfire_grace_seconds=5,
        )
        for index in range(count)
    ]


def _percentile_ms(values: list[float], q: int) -> float:
    if len(values) < 2:
        return (values[0] if values else 0.0) * 1000
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000


STAGES = ("ticker", "queue", "run", "record")
"""slot -> created_at (published) -> started_at -> completed_at -> document seen."""


@dataclass
class Window:
    """Completed jobs whose slot lies in [start, start + seconds)."""

    start: float
    seconds: float
    offered: int
    latencies: list[float] = field(default_factory=list)
    stages: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STAGES})
    last_seen: float = 0.0
    seen: set[str] = field(default_factory=set)
    full: asyncio.Event = field(default_factory=asyncio.Event)

    async def watch(self, db: AsyncDatabase[Document]) -> None:
        async with await db[JOBS].watch(full_document="updateLookup") as stream:
            async for change in stream:
                job = change.get("fullDocument") or {}
                if job.get("status") != "completed" or job["job_id"] in self.seen:
                    continue
                self.seen.add(job["job_id"])
                if self.start <= job["scheduled_for"].timestamp() < self.start + self.seconds:
                    self._count(job, time.time())

    def _count(self, job: Document, seen: float) -> None:
        moments = [
            job["scheduled_for"].timestamp(),
            job["created_at"].timestamp(),
            job["started_at"].timestamp(),
            job["completed_at"].timestamp(),
            seen,
        ]
        for stage, begin, end in zip(STAGES, moments, moments[1:], strict=False):
            self.stages[stage].append(end - begin)
        self.latencies.append(seen - moments[0])
        self.last_seen = seen
        if len(self.latencies) >= self.offered:
            self.full.set()


async def bench(schedules: int, seconds: float, concurrency: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        nats, mongo = await start_nats(data), await start_mongo(data)
        endpoints = Endpoints(nats_url=nats.url, mongo_url=mongo.url)
        settings = Settings(
            nats_url=nats.url,
            mongo_url=mongo.url,
            data_dir=data,
            http_host="127.0.0.1",
            runner_concurrency=concurrency,
        )
        services: list[Service] = [
            RecorderService(settings, endpoints),
            RunnerService(settings, endpoints),
            TickerService(settings, endpoints),
        ]
        nc = Client()
        await nc.connect(nats.url)
        await provision(nc.jetstream(), jetstream_layout(1, settings.lease_ttl_seconds))
        for service in services:
            await service.start()
        mongo_client = new_client(mongo.url)
        window = Window(time.time() + WARM_UP_SECONDS, seconds, schedules * int(seconds))
        watcher = asyncio.create_task(window.watch(database_of(mongo_client)))
        await put_schedules(nc.jetstream(), _schedules(schedules))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(window.full.wait(), WARM_UP_SECONDS + seconds + DRAIN_SECONDS)
        watcher.cancel()
        for service in reversed(services):
            await service.stop()
        await nc.close()
        await mongo_client.close()
        await nats.stop()
        await mongo.stop()

    completed = len(window.latencies)
    elapsed = max(window.last_seen - window.start, seconds)
    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; Mongo server: SecantusDB (embedded)")
    print(f"offered: {schedules} schedules x 1/s for {seconds:.0f} s = {window.offered} slots")
    print(
        f"completed: {completed} of them in {elapsed:.0f} s from the first slot:"
        f" {completed / elapsed:.1f} jobs/s"
    )
    print(
        f"slot -> completed document: p50 {_percentile_ms(window.latencies, 50):.0f} ms,"
        f" p99 {_percentile_ms(window.latencies, 99):.0f} ms,"
        f" max {max(window.latencies, default=0) * 1000:.0f} ms"
    )
    print(
        "stages p50 (ms): "
        + ", ".join(f"{s} {_percentile_ms(window.stages[s], 50):.0f}" for s in STAGES)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--schedules", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    asyncio.run(bench(args.schedules, args.seconds, args.concurrency))


if __name__ == "__main__":
    main()
