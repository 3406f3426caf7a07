"""Which webhooks each scheduled job has, kept in memory from a watch of KV `scheduled_jobs`.

The webhook sender's own watch, apart from the spec mirror's: a MongoDB outage that holds
the mirror up must not hold the webhooks up. Only schedules with webhooks are kept. A value
that is not a valid spec is skipped (the spec mirror counts it), leaving the last valid
one's webhooks in place.
"""

import asyncio
import contextlib
import logging

from nats.js.kv import KV_DEL, KV_PURGE, KeyValue
from pydantic import ValidationError

from natscron_shared.contract.models import ScheduledJob, Webhook
from natscron_shared.nats.kv_watch import InitialValues

log = logging.getLogger(__name__)


class WebhookDirectory:
    def __init__(self, kv: KeyValue, stopping: asyncio.Event) -> None:
        self._kv = kv
        self._stopping = stopping
        self._watcher: KeyValue.KeyWatcher | None = None
        self._webhooks: dict[str, tuple[Webhook, ...]] = {}

    def webhooks_of(self, scheduled_job_id: str) -> tuple[Webhook, ...]:
        return self._webhooks.get(scheduled_job_id, ())

    async def load(self) -> None:
        """Start the watch and apply the bucket's current values, so the webhooks of
        every spec are known before the sender takes its first event."""
        self._watcher = await self._kv.watchall()
        initial = await InitialValues.of(self._kv)
        async for entry in self._watcher:
            if entry is not None:
                self._apply(entry)
            if initial.complete_after(entry):
                return

    async def run(self) -> None:
        """Apply changes until `stop()`; call `load()` first."""
        assert self._watcher is not None, "load() first"
        async for entry in self._watcher:
            if self._stopping.is_set():
                return
            if entry is not None:
                self._apply(entry)

    async def stop(self) -> None:
        if self._watcher is not None:
            with contextlib.suppress(Exception):
                await self._watcher.stop()  # type: ignore[no-untyped-call]

    def _apply(self, entry: KeyValue.Entry) -> None:
        if entry.operation in (KV_DEL, KV_PURGE):
            self._webhooks.pop(entry.key, None)
            return
        try:
            spec = ScheduledJob.model_validate_json(entry.value or b"")
        except ValidationError:  # skipped, as the mirror skips it: the last valid spec holds
            log.debug("KV %s revision %s is not a valid spec", entry.key, entry.revision)
            return
        if spec.scheduled_job_id != entry.key or not spec.webhooks:
            self._webhooks.pop(entry.key, None)
        else:
            self._webhooks[entry.key] = tuple(spec.webhooks)
