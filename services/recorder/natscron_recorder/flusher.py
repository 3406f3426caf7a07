"""The loop that applies the recorder's flushes (`event_batch.py`): every `flush_seconds`,
sooner when the open flush holds enough runs, and once more when the service stops. A
flush that fails (MongoDB down, a race lost too often) is tried again after a pause; its
schedule events stay unacked meanwhile."""

import asyncio
import contextlib
import logging

from pymongo.errors import PyMongoError

from natscron_recorder.event_batch import EventBatchWriter
from natscron_recorder.guarded import WriteRaceError
from natscron_recorder.metrics import RecorderMetrics
from natscron_recorder.mongo_health import MongoHealth
from natscron_recorder.rollup_writer import RollupRaceError
from natscron_shared.runtime.clock import Clock

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0


class Flusher:
    def __init__(
        self,
        writer: EventBatchWriter,
        flush_seconds: float,
        metrics: RecorderMetrics,
        mongo: MongoHealth,
        clock: Clock,
        stopping: asyncio.Event,
    ) -> None:
        self._writer = writer
        self._flush_seconds = flush_seconds
        self._metrics = metrics
        self._mongo = mongo
        self._clock = clock
        self._stopping = stopping

    async def run(self) -> None:
        while not self._stopping.is_set():
            await self._wait(self._flush_seconds)
            while not await self.flush_once() and not self._stopping.is_set():
                await self._wait(RETRY_SECONDS)
        await self.flush_once()

    async def flush_once(self) -> bool:
        """True if every closed flush is applied."""
        try:
            recorded = await self._writer.flush(self._clock.now())
        except (PyMongoError, WriteRaceError, RollupRaceError) as exc:
            self._mongo.failed(exc, self._clock.now())
            log.warning("flush failed, trying again: %s", exc)
            return False
        self._metrics.documents.labels("scheduled_jobs", "update").inc(recorded.schedules_written)
        self._metrics.documents.labels("job_stats", "upsert").inc(recorded.stats_written)
        self._metrics.documents.labels("recorder_flushes", "upsert").inc(recorded.flush_writes)
        return True

    async def _wait(self, seconds: float) -> None:
        """Until `seconds` pass, the open flush is due, or the service stops."""
        due = asyncio.ensure_future(self._writer.flush_due.wait())
        stop = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({due, stop}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (due, stop):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
