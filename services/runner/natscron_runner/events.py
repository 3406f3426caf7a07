"""Publishing to the EVENTS and ITEMS streams; a failed publish is a `PublishFailedError`."""

from collections.abc import Callable

import nats.errors
from pydantic import BaseModel

from natscron_shared import names
from natscron_shared.clock import Clock
from natscron_shared.messages import MAX_MESSAGE_BYTES, ItemBatch, JobEvent, RunRequest, ScrapedItem
from natscron_shared.nats_conn import JetStreamPublisher

MAX_BATCH_ITEMS = 100
MAX_BATCH_ITEM_BYTES = MAX_MESSAGE_BYTES * 3 // 4
SKIP_TOO_LARGE = "too_large"


class PublishFailedError(Exception):
    """NATS did not confirm a publish; the job message must not be acked."""


async def publish(
    publisher: JetStreamPublisher, subject: str, model: BaseModel, msg_id: str
) -> None:
    try:
        await publisher.publish(subject, model, msg_id=msg_id)
    except (nats.errors.Error, TimeoutError) as exc:
        raise PublishFailedError(f"publish to {subject} failed: {type(exc).__name__}") from exc


async def publish_event(publisher: JetStreamPublisher, event: JobEvent) -> None:
    await publish(publisher, names.job_event_subject(event.job.job_id), event, event.msg_id)


class ItemBatcher:
    """Collects a job's items into `ItemBatch` messages of at most 100 items and ~768 KiB.

    An item too big for a message on its own is skipped (reported through `skip`).
    """

    def __init__(
        self,
        publisher: JetStreamPublisher,
        request: RunRequest,
        clock: Clock,
        skip: Callable[[str], None],
    ) -> None:
        self._publisher = publisher
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
        await publish(self._publisher, names.items_subject(batch.job_id), batch, batch.msg_id)
        self.batches += 1
        self.items += len(self._pending)
        self._pending = []
        self._pending_bytes = 0
