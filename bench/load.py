"""The offered load: R schedules firing every second is R jobs/s.

Cron's granularity is one second, so a rate of R needs R schedules of `* * * * * *`.
They keep the default `catchup: latest`: a ticker that falls behind merges a
schedule's missed slots into one run, which shows up as fewer completed jobs per
second than offered, not as a hidden queue.
"""

import asyncio
import time

from nats.js import JetStreamContext
from pymongo.asynchronous.database import AsyncDatabase

from natscron_shared.contract.models import ScheduledJob
from natscron_shared.contract.storage import SCHEDULED_JOBS, Document
from natscron_shared.nats.schedule_bucket import put_schedules

EVERY_SECOND = "* * * * * *"


def bench_schedules(count: int) -> list[ScheduledJob]:
    return [
        ScheduledJob(
            scheduled_job_id=f"bench-{index:05d}",
            name=f"bench {index}",
            cron_expression=EVERY_SECOND,
            scraper="noop",
            params={},
        )
        for index in range(count)
    ]


async def offer(js: JetStreamContext, rate: int) -> None:
    """Put `rate` every-second schedules into KV `scheduled_jobs`."""
    await put_schedules(js, bench_schedules(rate))


async def wait_mirrored(db: AsyncDatabase[Document], count: int, within: float) -> float | None:
    """Seconds until the recorder mirrored `count` specs into MongoDB; None if it did not
    within `within` seconds."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        if await db[SCHEDULED_JOBS].count_documents({}) >= count:
            return time.monotonic() - started
        await asyncio.sleep(1.0)
    return None
