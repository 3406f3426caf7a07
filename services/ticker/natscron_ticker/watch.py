"""Following KV `scheduled_jobs` into the schedule book: a watch, never a poll."""

import logging

from nats.js.kv import KV_DEL, KV_PURGE, KeyValue
from pydantic import ValidationError

from natscron_shared.models import ScheduledJob
from natscron_ticker.book import ScheduleBook
from natscron_ticker.metrics import TickerMetrics

log = logging.getLogger(__name__)


async def follow_schedules(bucket: KeyValue, book: ScheduleBook, metrics: TickerMetrics) -> None:
    """Apply every put and delete to `book` until cancelled."""
    watcher = await bucket.watchall()
    try:
        async for entry in watcher:
            if entry is None:
                book.loaded.set()
                continue
            book.revision = max(book.revision, entry.revision or 0)
            if entry.operation in (KV_DEL, KV_PURGE):
                book.remove(entry.key)
            else:
                spec = _parse(entry.key, entry.value or b"", metrics)
                if spec is not None:
                    book.put(spec)
            metrics.schedules.set(len(book))
    finally:
        await watcher.stop()  # type: ignore[no-untyped-call]


def _parse(key: str, value: bytes, metrics: TickerMetrics) -> ScheduledJob | None:
    try:
        spec = ScheduledJob.model_validate_json(value)
    except ValidationError as exc:
        problem = str(exc.errors(include_url=False, include_input=False)[:3])
    else:
        if spec.scheduled_job_id == key:
            return spec
        problem = f"it is stored under key {key!r} but names {spec.scheduled_job_id!r}"
    metrics.bad_schedules.inc()
    log.warning("ignoring KV scheduled_jobs entry %r: %s", key, problem)
    return None
