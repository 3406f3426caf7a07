"""Runs' status changes as they happen, for live lists: one ordered push consumer on stream
EVENTS (`jobs.events.>`, new messages only), shared by every listener of this API replica,
started when the first one listens and stopped when the last one leaves.

A listener gets the changes in batches (`batches`): the first change, then whatever else
arrives within `BATCH_SECONDS`, one change per job (its most advanced event). A listener
that falls `MAX_QUEUED` changes behind is told it missed some (`overrun`) rather than
slowing the others or growing without bound: its client reloads its list.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy
from prometheus_client import CollectorRegistry, Counter, Gauge
from pydantic import ValidationError

from natscron_api.views import RunChange
from natscron_shared.contract import names
from natscron_shared.contract.messages import JobEvent

log = logging.getLogger(__name__)

JOB_EVENTS = f"{names.JOBS_EVENTS_PREFIX}.>"
BATCH_SECONDS = 0.25
MAX_QUEUED = 10_000
IDLE_HEARTBEAT_SECONDS = 5.0


@dataclass(eq=False)
class Listener:
    """One client's queue of changes; `scheduled_job_id` keeps only that job's runs."""

    scheduled_job_id: str | None = None
    queue: asyncio.Queue[RunChange | None] = field(
        default_factory=lambda: asyncio.Queue(MAX_QUEUED)
    )
    overrun: bool = False

    def offer(self, change: RunChange) -> None:
        if self.scheduled_job_id is not None and change.scheduled_job_id != self.scheduled_job_id:
            return
        if self.overrun:
            return
        try:
            self.queue.put_nowait(change)
        except asyncio.QueueFull:
            self.overrun = True

    def close(self) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)

    async def batches(self, idle_seconds: float) -> AsyncIterator[list[RunChange] | None]:
        """Batches of changes, one per job each; None after `idle_seconds` without any (a
        heartbeat's turn); ends when the feed closes or the listener is overrun."""
        while not self.overrun:
            try:
                first = await asyncio.wait_for(self.queue.get(), idle_seconds)
            except TimeoutError:
                yield None
                continue
            if first is None:
                return
            await asyncio.sleep(BATCH_SECONDS)
            newest = {first.job_id: first}
            while not self.queue.empty():
                change = self.queue.get_nowait()
                if change is None:
                    return
                known = newest.get(change.job_id)
                if known is None or change.progress >= known.progress:
                    newest[change.job_id] = change
            yield list(newest.values())


class RunFeed:
    def __init__(self, js: JetStreamContext, registry: CollectorRegistry) -> None:
        self._js = js
        self._listeners: set[Listener] = set()
        self._subscription: JetStreamContext.PushSubscription | None = None
        self._lock = asyncio.Lock()
        self._closed = False
        self._listening = Gauge(
            "natscron_api_run_feed_listeners",
            "Clients following runs' status changes (the console's live lists)",
            registry=registry,
        )
        self._bad = Counter(
            "natscron_api_run_feed_bad_events_total",
            "Messages on jobs.events.> that are no job event, left out of the live lists",
            registry=registry,
        )

    @contextlib.asynccontextmanager
    async def listen(self, scheduled_job_id: str | None = None) -> AsyncIterator[Listener]:
        listener = Listener(scheduled_job_id)
        async with self._lock:
            if self._closed:
                listener.close()
            elif self._subscription is None:
                self._subscription = await self._js.subscribe(
                    JOB_EVENTS,
                    stream=names.STREAM_EVENTS,
                    cb=self._deliver,
                    ordered_consumer=True,
                    deliver_policy=DeliverPolicy.NEW,
                    idle_heartbeat=IDLE_HEARTBEAT_SECONDS,
                )
            self._listeners.add(listener)
            self._listening.set(len(self._listeners))
        try:
            yield listener
        finally:
            async with self._lock:
                self._listeners.discard(listener)
                self._listening.set(len(self._listeners))
                if not self._listeners:
                    await self._unsubscribe()

    async def close(self) -> None:
        """Every listener's stream ends (the API stops)."""
        async with self._lock:
            self._closed = True
            for listener in self._listeners:
                listener.close()
            await self._unsubscribe()

    async def _unsubscribe(self) -> None:
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()

    async def _deliver(self, message: Msg) -> None:
        try:
            change = RunChange.of(JobEvent.model_validate_json(message.data))
        except ValidationError:
            self._bad.inc()
            log.warning("run feed: %s holds no job event; left out", message.subject)
            return
        for listener in list(self._listeners):
            listener.offer(change)


HEARTBEAT_SECONDS = 15.0
"""A comment line this often keeps proxies from closing an idle stream."""
RECONNECT_MILLISECONDS = 2000


async def server_sent_events(listener: Listener) -> AsyncIterator[str]:
    """The listener's batches as server-sent events: `ready` once it listens (a client
    reads its list after it, so it misses no change), `runs` with a JSON array of
    `RunChange`s, and `overrun` when it fell behind (reload the list)."""
    yield f"retry: {RECONNECT_MILLISECONDS}\nevent: ready\ndata: {{}}\n\n"
    async for batch in listener.batches(HEARTBEAT_SECONDS):
        if batch is None:
            yield ": keep-alive\n\n"
            continue
        data = "[" + ",".join(change.model_dump_json() for change in batch) + "]"
        yield f"event: runs\ndata: {data}\n\n"
    if listener.overrun:
        yield "event: overrun\ndata: {}\n\n"
