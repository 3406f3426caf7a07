"""The recorder service: the only writer of MongoDB; see docs/architecture.md, "Recorder"."""

import asyncio
import contextlib
import logging

import nats.errors
from pymongo import AsyncMongoClient

from natscron_recorder.consumer import FETCH_WAIT_SECONDS, PullConsumer
from natscron_recorder.handling import MessageHandler
from natscron_recorder.indexes import ensure_indexes
from natscron_recorder.metrics import RecorderMetrics
from natscron_recorder.mongo import Document, database_of, new_client
from natscron_recorder.schedule_mirror import ScheduleMirror
from natscron_shared import names
from natscron_shared.clock import Clock, SystemClock
from natscron_shared.endpoints import Endpoints
from natscron_shared.jetstream_check import Needs, require_provisioned
from natscron_shared.lifecycle import Service, bounded
from natscron_shared.nats_conn import client_of, jetstream_of, new_broker, received_counter
from natscron_shared.settings import Settings

log = logging.getLogger(__name__)

LOOP_STOP_TIMEOUT_SECONDS = FETCH_WAIT_SECONDS + 5.0
CONSUMERS = (
    (names.STREAM_EVENTS, names.RECORDER_EVENTS_CONSUMER),
    (names.STREAM_ITEMS, names.RECORDER_ITEMS_CONSUMER),
)
NEEDS = Needs(
    streams=(names.STREAM_EVENTS, names.STREAM_ITEMS),
    buckets=(names.KV_SCHEDULED_JOBS,),
    consumers=CONSUMERS,
)


class RecorderService(Service):
    """Mirrors KV `scheduled_jobs` and writes the EVENTS and ITEMS streams into MongoDB.

    Stop: stop fetching, give in-flight writes up to `shutdown_grace_seconds`, then
    cancel the rest (unacked, so JetStream redelivers them).
    """

    name = "recorder"

    def __init__(
        self, settings: Settings, endpoints: Endpoints, clock: Clock | None = None
    ) -> None:
        super().__init__()
        self._settings = settings
        self._endpoints = endpoints
        self._clock: Clock = clock or SystemClock()
        self.metrics = RecorderMetrics.on(self.registry)
        self._broker = new_broker(
            endpoints.nats_url, "natscron-recorder", settings.shutdown_grace_seconds
        )
        self._mongo: AsyncMongoClient[Document] | None = None
        self._consumers: list[PullConsumer] = []
        self._mirror: ScheduleMirror | None = None
        self._stopping = asyncio.Event()
        self._recording: list[asyncio.Task[None]] = []

    async def _start(self) -> None:
        await bounded(self._broker.connect(), f"NATS at {self._endpoints.nats_url}")
        js = jetstream_of(self._broker)
        await require_provisioned(js, NEEDS, "recorder")
        self._mongo = new_client(self._endpoints.mongo_url)
        db = database_of(self._mongo)
        await bounded(ensure_indexes(db), f"MongoDB to create the indexes of {db.name}")
        received = received_counter(self.registry)

        handler = MessageHandler(db, self.metrics, self._clock)
        self._consumers = [
            PullConsumer(
                js, stream, durable, handler.handle, self.metrics, received, self._stopping
            )
            for stream, durable in CONSUMERS
        ]
        for consumer in self._consumers:
            await consumer.bind()
        kv = await js.key_value(names.KV_SCHEDULED_JOBS)
        self._mirror = ScheduleMirror(kv, db, self.metrics, self._clock, self._stopping)
        await self._mirror.watch()

        self._recording = [
            self.supervise(f"pull {consumer.durable}", consumer.run())
            for consumer in self._consumers
        ]
        self._recording.append(self.supervise("mirror", self._mirror.run()))
        log.info("recorder writing to MongoDB database %s", db.name)

    def _readiness_problems(self) -> list[str]:
        if not client_of(self._broker).is_connected:
            return ["not connected to NATS"]
        return []

    async def _stop(self) -> None:
        self._stopping.set()
        for consumer in self._consumers:
            consumer.wake()
        if self._mirror is not None:
            await self._mirror.stop()
        await self._finish_loops()
        for consumer in self._consumers:
            await consumer.close()
        with contextlib.suppress(nats.errors.Error):
            await client_of(self._broker).flush()
        await self._broker.stop()
        if self._mongo is not None:
            await self._mongo.close()
            self._mongo = None

    async def _finish_loops(self) -> None:
        """Wait for the loops and in-flight writes, within the grace period; cancel the rest."""
        if self._recording:
            _, late = await asyncio.wait(self._recording, timeout=LOOP_STOP_TIMEOUT_SECONDS)
            await _cancel(late, "loops")
        writes = {task for consumer in self._consumers for task in consumer.in_flight}
        if writes:
            log.info(
                "waiting up to %.1fs for %d writes",
                self._settings.shutdown_grace_seconds,
                len(writes),
            )
            _, late = await asyncio.wait(writes, timeout=self._settings.shutdown_grace_seconds)
            await _cancel(late, "writes")


async def _cancel(tasks: set[asyncio.Task[None]], what: str) -> None:
    if not tasks:
        return
    log.warning("cancelling %d unfinished %s", len(tasks), what)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
