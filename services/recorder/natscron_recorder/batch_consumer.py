"""A pull loop on one durable consumer that records what it fetches a batch at a time.

A fetch returns what is pending, up to `batch_size` (waiting at most `max_wait` when
nothing is), so batches grow by themselves under load while a quiet system records each
message at once. A batch is acked only after its writes are durable (a store may keep
some messages to ack itself later, once what they add is durable). Bad messages are
terminated on their own, without holding up their batch. While MongoDB refuses writes,
or its conditional writes keep losing races, the batch is kept, told to JetStream as
still in progress, and retried in order; nothing newer is fetched meanwhile.

Plain nats-py, not a FastStream pull subscriber: FastStream's pull loop swallows
`ServiceUnavailableError` (what a deleted consumer answers) and fetches again at once,
and restarts a failed loop by itself; this one backs off, asks whether its consumer
still exists, and otherwise dies under the service's supervision.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from prometheus_client import Counter
from pymongo.errors import PyMongoError

from natscron_recorder.guarded import WriteRaceError
from natscron_recorder.metrics import RecorderMetrics
from natscron_recorder.mongo_health import MongoHealth
from natscron_recorder.parsing import KINDS, BadMessageError, Stored, parse_message
from natscron_shared.nats.connection import TRANSIENT_NATS_ERRORS, settle_quietly
from natscron_shared.nats.jetstream_check import consumer_still_exists
from natscron_shared.nats.jetstream_layout import RECORDER_ACK_WAIT_SECONDS
from natscron_shared.runtime.clock import Clock
from natscron_shared.runtime.mongo_transaction import TooManyConflictsError

log = logging.getLogger(__name__)

FETCH_ERROR_BACKOFF_SECONDS = 1.0
MONGO_RETRY_SECONDS = 2.0
KEEP_ALIVE_SECONDS = RECORDER_ACK_WAIT_SECONDS / 3

Store = Callable[[list[tuple[Msg, Stored]]], Awaitable[list[Msg]]]
"""Writes a batch; the messages to ack now (the store acks the others itself)."""


class BatchConsumer:
    def __init__(
        self,
        js: JetStreamContext,
        stream: str,
        durable: str,
        store: Store,
        *,
        batch_size: int,
        max_wait: float,
        metrics: RecorderMetrics,
        received: Counter,
        mongo: MongoHealth,
        clock: Clock,
        stopping: asyncio.Event,
        store_when_idle: bool = False,
    ) -> None:
        """`store_when_idle`: a fetch that found nothing calls the store with no message,
        for it to write what it holds once its time is up."""
        self._js = js
        self._stream = stream
        self.durable = durable
        self._store = store
        self._batch_size = batch_size
        self._max_wait = max_wait
        self._metrics = metrics
        self._received = received.labels(durable)
        self._mongo = mongo
        self._clock = clock
        self._stopping = stopping
        self._store_when_idle = store_when_idle
        self._subscription: JetStreamContext.PullSubscription | None = None

    async def bind(self) -> None:
        self._subscription = await self._js.pull_subscribe_bind(
            durable=self.durable, stream=self._stream
        )

    async def run(self) -> None:
        """Fetch and record until `stopping` is set; call `bind()` first."""
        assert self._subscription is not None, "bind() first"
        while not self._stopping.is_set():
            try:
                msgs: list[Msg] = await self._subscription.fetch(
                    batch=self._batch_size, timeout=self._max_wait
                )
            except TimeoutError:
                if self._store_when_idle:
                    await self._record([])
                continue
            except TRANSIENT_NATS_ERRORS:
                self._metrics.nats_errors.labels("fetch").inc()
                log.warning("fetching from %s failed; retrying", self.durable, exc_info=True)
                await consumer_still_exists(self._js, self._stream, self.durable)
                await self._pause(FETCH_ERROR_BACKOFF_SECONDS)
                continue
            self._received.inc(len(msgs))
            await self._record(msgs)

    async def close(self) -> None:
        """Unsubscribe, so a stray answer to an expired fetch cannot stall a drain."""
        if self._subscription is not None:
            with contextlib.suppress(nats.errors.Error):
                await self._subscription.unsubscribe()
            self._subscription = None

    async def _record(self, msgs: list[Msg]) -> None:
        good: list[tuple[Msg, Stored]] = []
        for msg in msgs:
            try:
                good.append((msg, parse_message(msg)))
            except BadMessageError as exc:
                self._metrics.bad_messages.labels(exc.reason).inc()
                log.warning(
                    "terminating a bad message on %s (%s): %s", msg.subject, exc.reason, exc
                )
                await settle_quietly(msg.term(), "terminate", f"a message on {msg.subject}")
        if not good and (msgs or not self._store_when_idle):
            return
        ack_now = await self._store_until_done(good)
        if ack_now is None:
            return
        if good:
            self._metrics.batch_size.labels(self.durable).observe(len(good))
        for _, message in good:
            self._metrics.messages.labels(KINDS[type(message)]).inc()
        for msg in ack_now:
            await settle_quietly(msg.ack(), "ack", f"a message on {msg.subject}")

    async def _store_until_done(self, good: list[tuple[Msg, Stored]]) -> list[Msg] | None:
        """The messages to ack, once stored; None if the service stops first (the batch
        is then left unacked, for JetStream to deliver again)."""
        kept_alive = self._clock.now()
        while True:
            try:
                with self._metrics.write_duration.labels(self.durable).time():
                    ack_now = await self._store(good)
            except (PyMongoError, WriteRaceError, TooManyConflictsError) as exc:
                self._mongo.failed(exc, self._clock.now())
            else:
                self._mongo.wrote()
                return ack_now
            if (self._clock.now() - kept_alive).total_seconds() >= KEEP_ALIVE_SECONDS:
                kept_alive = self._clock.now()
                for msg, _ in good:
                    await settle_quietly(msg.in_progress(), "extend", f"a message on {msg.subject}")
            if await self._pause(MONGO_RETRY_SECONDS):
                return None

    async def _pause(self, seconds: float) -> bool:
        """Wait `seconds` or until stopping; True if stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        return self._stopping.is_set()
