"""A pull loop on one durable consumer, handling at most `limit` messages at once.

Plain nats-py, not a FastStream pull subscriber: FastStream's pull loop swallows
`ServiceUnavailableError` (what a deleted consumer answers) and fetches again at once,
and restarts a failed loop by itself; this one backs off, asks whether its consumer
still exists, and otherwise dies under the service's supervision.

Writes are idempotent and order-independent, so messages are handled concurrently.
It fetches only as many messages as it has free slots, so none waits in memory
while its ack_wait runs out.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from prometheus_client import Counter

from natscron_recorder.metrics import RecorderMetrics
from natscron_shared.jetstream_check import consumer_still_exists
from natscron_shared.nats_conn import TRANSIENT_NATS_ERRORS

log = logging.getLogger(__name__)

FETCH_WAIT_SECONDS = 0.5
FETCH_ERROR_BACKOFF_SECONDS = 1.0
DEFAULT_LIMIT = 32


class PullConsumer:
    def __init__(
        self,
        js: JetStreamContext,
        stream: str,
        durable: str,
        handle: Callable[[Msg], Coroutine[Any, Any, None]],
        metrics: RecorderMetrics,
        received: Counter,
        stopping: asyncio.Event,
        limit: int = DEFAULT_LIMIT,
    ) -> None:
        self._js = js
        self._stream = stream
        self.durable = durable
        self._received = received.labels(durable)
        self._handle = handle
        self._metrics = metrics
        self._stopping = stopping
        self._limit = limit
        self._subscription: JetStreamContext.PullSubscription | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._slot_freed = asyncio.Event()

    async def bind(self) -> None:
        self._subscription = await self._js.pull_subscribe_bind(
            durable=self.durable, stream=self._stream
        )

    async def run(self) -> None:
        """Fetch and spawn handlers until `stopping` is set; call `bind()` first."""
        assert self._subscription is not None, "bind() first"
        while not self._stopping.is_set():
            self._slot_freed.clear()
            free = self._limit - len(self._in_flight)
            if free <= 0:
                await self._slot_freed.wait()
                continue
            try:
                msgs: list[Msg] = await self._subscription.fetch(
                    batch=free, timeout=FETCH_WAIT_SECONDS
                )
            except TimeoutError:
                continue
            except TRANSIENT_NATS_ERRORS:
                self._metrics.nats_errors.labels("fetch").inc()
                log.warning("fetching from %s failed; retrying", self.durable, exc_info=True)
                await consumer_still_exists(self._js, self._stream, self.durable)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), FETCH_ERROR_BACKOFF_SECONDS)
                continue
            self._received.inc(len(msgs))
            # Fetched messages are handled even when stopping: each is one quick write.
            for msg in msgs:
                self._spawn(msg)

    def wake(self) -> None:
        """Unblock `run()` waiting for a free slot, e.g. to let it see `stopping`."""
        self._slot_freed.set()

    def _spawn(self, msg: Msg) -> None:
        task = asyncio.create_task(self._handle(msg), name=f"recorder-{self.durable}")
        self._in_flight.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._slot_freed.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("a message handler crashed", exc_info=task.exception())

    @property
    def in_flight(self) -> set[asyncio.Task[None]]:
        return set(self._in_flight)

    async def close(self) -> None:
        """Unsubscribe, so a stray answer to an expired fetch cannot stall a drain."""
        if self._subscription is not None:
            with contextlib.suppress(nats.errors.Error):
                await self._subscription.unsubscribe()
            self._subscription = None
