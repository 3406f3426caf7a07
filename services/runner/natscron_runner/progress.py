"""Progress acks: while a job runs, its runner tells JetStream every third of the lane's ack
wait that the message is still being worked on (`+WPI`). So the ack wait can be short (a
dead runner's jobs run elsewhere once it runs out) without a live job being redelivered.

The beats stop with the job (the context manager cancels and awaits them), and in two
cases the beat cannot keep the promise, each counted in
`natscron_runner_progress_acks_total` and logged:

- `late`: the event loop stalled (a scraper blocking it, a starved machine) past the ack
  wait, so JetStream may already have handed the job to another runner. Nothing here can
  take that back; the job goes on, and the recorder keeps one record of the two runs
  (its monotonic rules). A `forbid` or `replace` schedule is still guarded by its claim.
- `overrun`: the job outlived its own timeout by `OVERRUN_GRACE_SECONDS` (a scrape that
  swallows the timeout's cancel, a publish that never returns): the beats stop, so the
  job goes to another runner after the ack wait instead of holding its message forever.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

from nats.aio.msg import Msg
from prometheus_client import Counter

from natscron_shared.runtime.clock import Clock

log = logging.getLogger(__name__)

BEATS_PER_ACK_WAIT = 3
OVERRUN_GRACE_SECONDS = 60.0
"""Beyond a job's own timeout: covers the wait for its claims (a `replace` waits up to the
claim TTL and a margin) and the publishing of its final event."""


def progress_interval(ack_wait_seconds: float) -> timedelta:
    """How often a running job's message is renewed: two beats may be missed."""
    return timedelta(seconds=ack_wait_seconds / BEATS_PER_ACK_WAIT)


def overrun_deadline(now: datetime, timeout_seconds: float) -> datetime:
    """When a job taken at `now` stops renewing its message."""
    return now + timedelta(seconds=timeout_seconds + OVERRUN_GRACE_SECONDS)


@contextlib.asynccontextmanager
async def progress_acks(
    msg: Msg,
    job_id: str,
    clock: Clock,
    ack_wait_seconds: float,
    until: datetime,
    outcomes: Counter,
) -> AsyncIterator[None]:
    """Renew `msg` every third of `ack_wait_seconds` while the block runs, up to `until`."""
    interval = progress_interval(ack_wait_seconds)
    ack_wait = timedelta(seconds=ack_wait_seconds)

    async def beat() -> None:
        previous = clock.now()
        while True:
            await clock.sleep_until(min(previous + interval, until))
            woke = clock.now()
            if woke >= until:
                outcomes.labels("overrun").inc()
                log.warning(
                    "job %s outlived its timeout by %.0fs; no longer renewing its message,"
                    " so another runner gets it after the ack wait",
                    job_id,
                    OVERRUN_GRACE_SECONDS,
                )
                return
            if woke - previous > ack_wait:
                outcomes.labels("late").inc()
                log.warning(
                    "job %s: its message went %.1fs without a progress ack (ack wait %gs):"
                    " the event loop stalled, and another runner may have it too",
                    job_id,
                    (woke - previous).total_seconds(),
                    ack_wait_seconds,
                )
            try:
                await msg.in_progress()
            except Exception:
                outcomes.labels("failed").inc()
                log.warning("job %s: progress ack failed", job_id, exc_info=True)
            else:
                outcomes.labels("sent").inc()
            previous = woke

    task = asyncio.create_task(beat(), name=f"runner-progress-{job_id}")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
