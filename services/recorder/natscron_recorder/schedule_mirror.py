"""Mirrors KV `scheduled_jobs` into the `scheduled_jobs` collection through a KV watch.

The watch delivers every key's current value, then each change as it happens. A
value that is not a valid spec is counted and skipped; a MongoDB error retries the
same entry until it is stored, so the mirror never silently drops a change.
"""

import asyncio
import contextlib
import logging

from bson.errors import InvalidDocument
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue
from pydantic import ValidationError
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from natscron_recorder.metrics import RecorderMetrics
from natscron_recorder.schedule_writer import write_deletion, write_spec
from natscron_shared.contract.messages import bad_message_reason
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.contract.storage import Document
from natscron_shared.runtime.clock import Clock

log = logging.getLogger(__name__)

KIND = "schedule_spec"
MONGO_RETRY_SECONDS = 2.0


class ScheduleMirror:
    def __init__(
        self,
        kv: KeyValue,
        db: AsyncDatabase[Document],
        metrics: RecorderMetrics,
        clock: Clock,
        stopping: asyncio.Event,
    ) -> None:
        self._kv = kv
        self._db = db
        self._metrics = metrics
        self._clock = clock
        self._stopping = stopping
        self._watcher: KeyValue.KeyWatcher | None = None

    async def watch(self) -> None:
        self._watcher = await self._kv.watchall()

    async def run(self) -> None:
        """Apply entries until `stop()`; call `watch()` first."""
        assert self._watcher is not None, "watch() first"
        async for entry in self._watcher:
            if self._stopping.is_set():
                return
            if entry is not None:  # None marks the end of the initial values
                await self._apply(entry)

    async def stop(self) -> None:
        if self._watcher is not None:
            with contextlib.suppress(Exception):
                await self._watcher.stop()  # type: ignore[no-untyped-call]

    async def _apply(self, entry: KeyValue.Entry) -> None:
        while True:
            try:
                await self._store(entry)
                return
            except (InvalidDocument, OverflowError) as exc:  # valid JSON that BSON cannot hold
                self._bad(entry, "unstorable", f"{type(exc).__name__}: {exc}")
                return
            except PyMongoError:
                self._metrics.mongo_errors.inc()
                log.warning(
                    "storing schedule %s failed; retrying in %.0fs",
                    entry.key,
                    MONGO_RETRY_SECONDS,
                    exc_info=True,
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), MONGO_RETRY_SECONDS)
                return

    async def _store(self, entry: KeyValue.Entry) -> None:
        revision = entry.revision or 0
        with self._metrics.write_duration.labels(KIND).time():
            if entry.operation in (KV_DEL, KV_PURGE):
                applied = await write_deletion(self._db, entry.key, revision, self._clock.now())
            else:
                spec = self._parse(entry)
                if spec is None:
                    return
                applied = await write_spec(self._db, spec, revision, self._clock.now())
        self._metrics.messages.labels(KIND).inc()
        if applied:
            self._metrics.documents.labels("scheduled_jobs", "upsert").inc()

    def _parse(self, entry: KeyValue.Entry) -> ScheduledJob | None:
        try:
            spec = ScheduledJob.model_validate_json(entry.value or b"")
        except ValidationError as exc:
            self._bad(
                entry,
                bad_message_reason(exc),
                str(exc.errors(include_url=False, include_input=False)[:3]),
            )
            return None
        if spec.scheduled_job_id != entry.key:
            self._bad(entry, "key_mismatch", f"the value names {spec.scheduled_job_id!r}")
            return None
        return spec

    def _bad(self, entry: KeyValue.Entry, reason: str, detail: str) -> None:
        self._metrics.bad_messages.labels(reason).inc()
        log.warning(
            "skipping KV %s/%s revision %s (%s): %s",
            entry.bucket,
            entry.key,
            entry.revision,
            reason,
            detail,
        )
