"""One EVENTS or ITEMS message: parse by subject, write, then settle it.

Acked only after its write returned; terminated if it can never be parsed or stored
(counted as a bad message); nak'ed with a delay on a MongoDB error, so JetStream
redelivers it until MongoDB takes it.
"""

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from bson.errors import InvalidDocument
from nats.aio.msg import Msg
from pydantic import BaseModel, ValidationError
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from natscron_recorder.items_writer import write_item_batch
from natscron_recorder.job_writer import record_job_event
from natscron_recorder.metrics import RecorderMetrics
from natscron_recorder.mongo import Document
from natscron_recorder.schedule_writer import write_schedule_event
from natscron_shared import names
from natscron_shared.clock import Clock
from natscron_shared.messages import ItemBatch, JobEvent, ScheduleEvent, bad_message_reason
from natscron_shared.nats_conn import settle_quietly

log = logging.getLogger(__name__)

MONGO_RETRY_SECONDS = 2.0
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Route(Generic[M]):
    prefix: str
    kind: str
    model: type[M]
    write: Callable[[M], Awaitable[bool]]


class MessageHandler:
    def __init__(self, db: AsyncDatabase[Document], metrics: RecorderMetrics, clock: Clock) -> None:
        self._db = db
        self._metrics = metrics
        self._clock = clock
        self._routes: list[Route[Any]] = [
            Route(f"{names.JOBS_EVENTS_PREFIX}.", "job_event", JobEvent, self._job_event),
            Route(
                f"{names.SCHEDULED_JOBS_EVENTS_PREFIX}.",
                "schedule_event",
                ScheduleEvent,
                self._schedule_event,
            ),
            Route(f"{names.ITEMS_PREFIX}.", "items", ItemBatch, self._items),
        ]

    async def _job_event(self, event: JobEvent) -> bool:
        return await record_job_event(self._db, event, self._clock.now())

    async def _schedule_event(self, event: ScheduleEvent) -> bool:
        return await write_schedule_event(self._db, event)

    async def _items(self, batch: ItemBatch) -> bool:
        return await write_item_batch(self._db, batch)

    async def handle(self, msg: Msg) -> None:
        """Never raises: every outcome settles the message (or leaves it to ack_wait)."""
        route = next((r for r in self._routes if msg.subject.startswith(r.prefix)), None)
        if route is None:
            await self._reject(msg, "unknown_subject", "no writer for this subject")
            return
        try:
            message = route.model.model_validate_json(msg.data)
        except ValidationError as exc:
            details = exc.errors(include_url=False, include_input=False)[:3]
            await self._reject(msg, bad_message_reason(exc), str(details))
            return
        try:
            with self._metrics.write_duration.labels(route.kind).time():
                applied = await route.write(message)
        except PyMongoError as exc:
            self._metrics.mongo_errors.inc()
            log.warning(
                "storing a message on %s failed (%s: %s); redelivering it in %.0fs",
                msg.subject,
                type(exc).__name__,
                exc,
                MONGO_RETRY_SECONDS,
            )
            await settle_quietly(
                msg.nak(delay=MONGO_RETRY_SECONDS), "nak", f"a message on {msg.subject}"
            )
            return
        except (InvalidDocument, OverflowError) as exc:  # valid JSON that BSON cannot hold
            await self._reject(msg, "unstorable", f"{type(exc).__name__}: {exc}")
            return
        self._metrics.messages.labels(route.kind, "applied" if applied else "duplicate").inc()
        await settle_quietly(msg.ack(), "ack", f"a message on {msg.subject}")

    async def _reject(self, msg: Msg, reason: str, detail: str) -> None:
        self._metrics.bad_messages.labels(reason).inc()
        log.warning("terminating a bad message on %s (%s): %s", msg.subject, reason, detail)
        await settle_quietly(msg.term(), "terminate", f"a message on {msg.subject}")
