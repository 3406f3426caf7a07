"""Publishing to the EVENTS and ITEMS streams; a failed publish is a `PublishFailedError`.

An attempt's `running` event and item batches are pipelined (`AttemptSends`): sent
without waiting for each ack, and all confirmed before the event that ends the attempt
is published. That event thus never describes a batch JetStream has not stored, and
the message, settled after it, is never acked while one of them could be missing.
"""

import asyncio
from collections import deque
from collections.abc import Callable

import nats.errors
from nats.js.api import PubAck
from pydantic import BaseModel

from natscron_shared.contract import names
from natscron_shared.contract.messages import (
    MAX_MESSAGE_BYTES,
    ItemBatch,
    JobEvent,
    RunRequest,
    ScrapedItem,
)
from natscron_shared.nats.connection import JetStreamPublisher, all_acked
from natscron_shared.runtime.clock import Clock

MAX_BATCH_ITEMS = 100
MAX_BATCH_ITEM_BYTES = MAX_MESSAGE_BYTES * 3 // 4
MAX_SENDS_IN_FLIGHT = 8
"""Per attempt: a scraper faster than JetStream waits for the oldest ack beyond this,
so a job holds at most this many batches (about 6 MiB) in memory."""
SKIP_TOO_LARGE = "too_large"
NATS_ERRORS = (nats.errors.Error, TimeoutError)


class PublishFailedError(Exception):
    """NATS did not confirm a publish; the job message must not be acked."""


async def publish(
    publisher: JetStreamPublisher, subject: str, model: BaseModel, msg_id: str
) -> None:
    try:
        await publisher.publish(subject, model, msg_id=msg_id)
    except NATS_ERRORS as exc:
        raise PublishFailedError(f"publish to {subject} failed: {type(exc).__name__}") from exc


async def publish_event(publisher: JetStreamPublisher, event: JobEvent) -> None:
    await publish(publisher, names.job_event_subject(event.job.job_id), event, event.msg_id)


class AttemptSends:
    """The pipelined publications of one attempt, until they are confirmed.

    A wait for acks that is cancelled (the job's timeout, say) leaves the publications
    running, so a later `confirmed` still learns how each one ended."""

    def __init__(self, publisher: JetStreamPublisher) -> None:
        self._publisher = publisher
        self._sending: deque[asyncio.Task[PubAck]] = deque()

    async def send(self, subject: str, model: BaseModel, msg_id: str) -> None:
        while len(self._sending) >= MAX_SENDS_IN_FLIGHT:
            await _confirm([self._sending[0]])
            self._sending.popleft()
        self._sending.append(self._publisher.publish_nowait(subject, model, msg_id))

    async def send_event(self, event: JobEvent) -> None:
        await self.send(names.job_event_subject(event.job.job_id), event, event.msg_id)

    async def confirmed(self) -> None:
        """Return once every publication sent so far is stored; raise if one is not."""
        await _confirm(list(self._sending))
        self._sending.clear()


async def _confirm(sends: list[asyncio.Task[PubAck]]) -> None:
    try:
        await all_acked(sends)
    except NATS_ERRORS as exc:
        raise PublishFailedError(f"a publication was not confirmed: {type(exc).__name__}") from exc


class ItemBatcher:
    """Collects a job's items into `ItemBatch` messages of at most 100 items and ~768 KiB.

    An item too big for a message on its own is skipped (reported through `skip`).
    Batches go out through the attempt's `AttemptSends`: `batches` and `items` count
    what was sent, which is what is stored once `confirmed` returned.
    """

    def __init__(
        self,
        sends: AttemptSends,
        request: RunRequest,
        clock: Clock,
        skip: Callable[[str], None],
    ) -> None:
        self._sends = sends
        self._request = request
        self._clock = clock
        self._skip = skip
        self._pending: list[ScrapedItem] = []
        self._pending_bytes = 0
        self.batches = 0
        self.items = 0

    async def add(self, item: ScrapedItem) -> None:
        size = len(item.model_dump_json())
        if size > MAX_BATCH_ITEM_BYTES:
            self._skip(SKIP_TOO_LARGE)
            return
        if self._pending_bytes + size > MAX_BATCH_ITEM_BYTES:
            await self.flush()
        self._pending.append(item)
        self._pending_bytes += size
        if len(self._pending) >= MAX_BATCH_ITEMS:
            await self.flush()

    def resume(self, batches: int, items: int) -> None:
        """Go on from where an earlier delivery of the job left off (its checkpoint)."""
        self.batches = batches
        self.items = items

    async def confirmed(self) -> None:
        """Send what is pending, then return once every batch sent is stored."""
        await self.flush()
        await self._sends.confirmed()

    async def flush(self) -> None:
        if not self._pending:
            return
        batch = ItemBatch(
            job_id=self._request.job_id,
            scheduled_job_id=self._request.scheduled_job_id,
            batch=self.batches,
            scraped_at=self._clock.now(),
            items=self._pending,
        )
        await self._sends.send(names.items_subject(batch.job_id), batch, batch.msg_id)
        self.batches += 1
        self.items += len(self._pending)
        self._pending = []
        self._pending_bytes = 0
