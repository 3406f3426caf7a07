"""Is the schedule book still fed? A ticker must not fire from a stale book.

A KV watch that silently stops delivering (its consumer gone, its bucket deleted) would
leave the leader firing yesterday's schedules. The watchdog compares the bucket's last
sequence with the newest revision the watch delivered: a gap that outlives `stale_after`
seconds while the watch delivers nothing, or a bucket that no longer exists, ends the loop
with an error, which fails the ticker (`Service.supervise`): it releases the lease and
exits non-zero.
While NATS is unreachable nothing can be judged, and nothing is fired either.
"""

import asyncio

from nats.js import JetStreamContext

from natscron_shared.contract import names
from natscron_shared.contract.errors import NatscronError
from natscron_shared.nats.connection import TRANSIENT_NATS_ERRORS
from natscron_shared.nats.jetstream_layout import kv_stream_name
from natscron_ticker.book import ScheduleBook

CHECK_INTERVAL_SECONDS = 5.0
STALE_AFTER_SECONDS = 15.0


class WatchStaleError(NatscronError):
    code = "watch_stale"


async def watch_watchdog(
    js: JetStreamContext,
    book: ScheduleBook,
    interval: float = CHECK_INTERVAL_SECONDS,
    stale_after: float = STALE_AFTER_SECONDS,
) -> None:
    """Run until cancelled; raise `WatchStaleError` when the book stopped following KV."""
    clock = asyncio.get_running_loop()
    behind_since: float | None = None
    delivered = book.revision
    stream = kv_stream_name(names.KV_SCHEDULED_JOBS)
    while True:
        await asyncio.sleep(interval)
        try:
            last = (await js.stream_info(stream)).state.last_seq
        except TRANSIENT_NATS_ERRORS:
            continue
        if book.revision >= last or book.revision > delivered:
            # Caught up, or still delivering (a million specs take a while to load).
            behind_since, delivered = None, book.revision
            continue
        behind_since = behind_since if behind_since is not None else clock.time()
        if clock.time() - behind_since > stale_after:
            raise WatchStaleError(
                f"the KV {names.KV_SCHEDULED_JOBS} watch delivered revision {book.revision}"
                f" but the bucket is at {last}, for over {stale_after:.0f}s"
            )
