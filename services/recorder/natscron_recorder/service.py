"""The recorder service: the only writer of MongoDB; see docs/architecture.md, "Recorder"."""

import asyncio
import contextlib
import logging

import nats.errors
from nats.aio.msg import Msg
from pymongo import AsyncMongoClient

from natscron_recorder.auto_pause import AutoPause
from natscron_recorder.batch_consumer import BatchConsumer, Store
from natscron_recorder.decision_batch import DecisionWriter
from natscron_recorder.event_batch import EventBatchWriter
from natscron_recorder.flusher import Flusher
from natscron_recorder.hold import EventHold
from natscron_recorder.items_batch import ItemBatchWriter
from natscron_recorder.metrics import RecorderMetrics
from natscron_recorder.mongo_health import MongoHealth
from natscron_recorder.parsing import Stored
from natscron_recorder.retention import RetentionRule, RetentionSweep
from natscron_recorder.schedule_mirror import ScheduleMirror
from natscron_recorder.webhook_directory import WebhookDirectory
from natscron_recorder.webhooks import WebhookSender, WebhookSettings
from natscron_shared.contract import names
from natscron_shared.contract.decisions import Decision
from natscron_shared.contract.messages import ItemBatch, JobEvent, ScheduleEvent
from natscron_shared.contract.storage import Document
from natscron_shared.nats.connection import client_of, jetstream_of, new_broker, received_counter
from natscron_shared.nats.jetstream_check import Needs, require_provisioned
from natscron_shared.runtime.clock import Clock, SystemClock
from natscron_shared.runtime.endpoints import Endpoints
from natscron_shared.runtime.lifecycle import Service, bounded
from natscron_shared.runtime.mongo import database_of, ensure_indexes, new_client
from natscron_shared.runtime.settings import Settings

log = logging.getLogger(__name__)

CONSUMERS = (
    (names.STREAM_EVENTS, names.RECORDER_EVENTS_CONSUMER),
    (names.STREAM_ITEMS, names.RECORDER_ITEMS_CONSUMER),
    (names.STREAM_DECISIONS, names.RECORDER_DECISIONS_CONSUMER),
)
NEEDS = Needs(
    streams=(names.STREAM_EVENTS, names.STREAM_ITEMS, names.STREAM_DECISIONS),
    buckets=(names.KV_SCHEDULED_JOBS,),
    consumers=(*CONSUMERS, (names.STREAM_EVENTS, names.WEBHOOKS_CONSUMER)),
)


class RecorderService(Service):
    """Mirrors KV `scheduled_jobs` and writes the EVENTS, ITEMS and DECISIONS streams into
    MongoDB; calls the schedules' webhooks when their runs end (`webhooks.py`), apart from
    that.

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
        self._broker = new_broker(settings, endpoints.nats_url, "natscron-recorder")
        self._mongo: AsyncMongoClient[Document] | None = None
        self._consumers: list[BatchConsumer] = []
        self.mongo_health = MongoHealth(self.metrics)
        self._mirror: ScheduleMirror | None = None
        self._directory: WebhookDirectory | None = None
        self._webhooks: WebhookSender | None = None
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

        kv = await js.key_value(names.KV_SCHEDULED_JOBS)
        writer = EventBatchWriter(self._mongo, db, AutoPause(kv, self.metrics))
        flusher = Flusher(
            writer,
            self._settings.recorder_flush_seconds,
            self.metrics,
            self.mongo_health,
            self._clock,
            self._stopping,
        )
        stores = {
            names.RECORDER_EVENTS_CONSUMER: self._events_store(writer),
            names.RECORDER_ITEMS_CONSUMER: self._items_store(ItemBatchWriter(self._mongo, db)),
            names.RECORDER_DECISIONS_CONSUMER: self._decisions_store(DecisionWriter(db)),
        }
        self._consumers = [
            BatchConsumer(
                js,
                stream,
                durable,
                stores[durable],
                batch_size=self._settings.recorder_batch_size,
                max_wait=self._settings.recorder_batch_max_wait_seconds,
                metrics=self.metrics,
                received=received,
                mongo=self.mongo_health,
                clock=self._clock,
                stopping=self._stopping,
                store_when_idle=durable == names.RECORDER_EVENTS_CONSUMER,
            )
            for stream, durable in CONSUMERS
        ]
        for consumer in self._consumers:
            await consumer.bind()
        self._mirror = ScheduleMirror(kv, db, self.metrics, self._clock, self._stopping)
        await self._mirror.watch()
        self._directory = WebhookDirectory(kv, self._stopping)
        await bounded(self._directory.load(), "the webhooks in KV scheduled_jobs")
        self._webhooks = WebhookSender(
            js,
            self._directory,
            WebhookSettings.of(self._settings),
            self.metrics,
            received,
            self._stopping,
        )
        await self._webhooks.bind()

        self._recording = [
            self.supervise(f"pull {consumer.durable}", consumer.run())
            for consumer in self._consumers
        ]
        self._recording.append(self.supervise("flush", flusher.run()))
        self._recording.append(self.supervise("mirror", self._mirror.run()))
        self._recording.append(self.supervise("webhook directory", self._directory.run()))
        self._recording.append(self.supervise("webhooks", self._webhooks.run()))
        rule = RetentionRule(self._settings.history_runs, self._settings.history_days)
        sweep = RetentionSweep(db, rule, self._clock)
        self.supervise("retention", sweep.run(self._settings.retention_interval_seconds))
        log.info("recorder writing to MongoDB database %s", db.name)

    def _events_store(self, writer: EventBatchWriter) -> Store:
        hold = EventHold(self._settings.recorder_hold_seconds)

        async def store(messages: list[tuple[Msg, Stored]]) -> list[Msg]:
            """Job events are held until their job ends (`hold.py`); schedule events are
            acked by their flush (nothing else keeps them)."""
            now = self._clock.now()
            job_events = [(msg, m) for msg, m in messages if isinstance(m, JobEvent)]
            jobs = hold.take(job_events, now, idle=not messages)
            schedules = [(msg, m) for msg, m in messages if isinstance(m, ScheduleEvent)]
            try:
                recorded = await writer.record(
                    [event for _, event in jobs],
                    [event for _, event in schedules],
                    now,
                    schedule_msgs=[msg for msg, _ in schedules],
                )
            except BaseException:
                hold.put_back(jobs, now)
                raise
            self.metrics.held_events.set(len(hold))
            self.metrics.documents.labels("jobs", "insert").inc(recorded.jobs_inserted)
            self.metrics.documents.labels("jobs", "update").inc(recorded.jobs_updated)
            self.metrics.runs_finished.inc(recorded.runs_finished)
            for scheduled_job_id, status in recorded.scheduled_runs_finished:
                self.metrics.schedule_runs.labels(scheduled_job_id, status.value).inc()
            others = [msg for msg, m in messages if not isinstance(m, JobEvent | ScheduleEvent)]
            return [msg for msg, _ in jobs] + list(recorded.ack_now) + others

        return store

    def _items_store(self, writer: ItemBatchWriter) -> Store:
        async def store(messages: list[tuple[Msg, Stored]]) -> list[Msg]:
            recorded = await writer.record([m for _, m in messages if isinstance(m, ItemBatch)])
            self.metrics.documents.labels("items", "upsert").inc(recorded.items_written)
            self.metrics.documents.labels("jobs", "upsert").inc(recorded.batches_counted)
            return [msg for msg, _ in messages]

        return store

    def _decisions_store(self, writer: DecisionWriter) -> Store:
        async def store(messages: list[tuple[Msg, Stored]]) -> list[Msg]:
            recorded = await writer.record([m for _, m in messages if isinstance(m, Decision)])
            self.metrics.documents.labels("decisions", "upsert").inc(recorded)
            return [msg for msg, _ in messages]

        return store

    def _readiness_problems(self) -> list[str]:
        problems = [] if client_of(self._broker).is_connected else ["not connected to NATS"]
        return problems + self.mongo_health.problems()

    async def _stop(self) -> None:
        self._stopping.set()
        if self._mirror is not None:
            await self._mirror.stop()
        if self._directory is not None:
            await self._directory.stop()
        await self._finish_loops()
        for consumer in self._consumers:
            await consumer.close()
        if self._webhooks is not None:
            await self._webhooks.close()
        with contextlib.suppress(nats.errors.Error):
            await client_of(self._broker).flush()
        await self._broker.stop()
        if self._mongo is not None:
            await self._mongo.close()
            self._mongo = None

    async def _finish_loops(self) -> None:
        """Let the loops finish the batch in hand, within the grace period; cancel the rest
        (a batch cut short is not acked, so JetStream delivers it again)."""
        if self._recording:
            _, late = await asyncio.wait(
                self._recording, timeout=self._settings.shutdown_grace_seconds
            )
            await _cancel(late, "loops")


async def _cancel(tasks: set[asyncio.Task[None]], what: str) -> None:
    if not tasks:
        return
    log.warning("cancelling %d unfinished %s", len(tasks), what)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
