"""Following KV `scheduled_jobs` into the schedule book: a watch, never a poll.

While the book loads, what it has so far is moved out of the cyclic garbage collector's
sight (`gc.freeze`) every `FREEZE_EVERY` specs, and once more when it is loaded: the book,
the states and the agenda of a million schedules live as long as the process, and a full
collection that walked them would pause the loop for 0.1-0.8 s each time, again and again
as the heap grows (bench/RESULTS.md). Nothing of theirs forms cycles, so nothing is kept
that a collection would have freed.
"""

import gc
import logging
from datetime import datetime

from nats.js.kv import KV_DEL, KV_PURGE, KeyValue
from pydantic import ValidationError

from natscron_shared.kv_watch import InitialValues
from natscron_shared.models import ScheduledJob
from natscron_ticker.book import ScheduleBook
from natscron_ticker.metrics import TickerMetrics

log = logging.getLogger(__name__)

FREEZE_EVERY = 50_000


async def follow_schedules(bucket: KeyValue, book: ScheduleBook, metrics: TickerMetrics) -> None:
    """Apply every put and delete to `book` until cancelled."""
    watcher = await bucket.watchall()
    initial = await InitialValues.of(bucket)
    try:
        async for entry in watcher:
            if entry is not None:
                _apply(entry, book, metrics)
            if book.loaded.is_set():
                continue
            if initial.complete_after(entry):
                gc.freeze()
                book.loaded.set()
                log.info("the schedule book is loaded: %d scheduled jobs", len(book))
            elif len(book) % FREEZE_EVERY == 0:
                gc.freeze()
    finally:
        await watcher.stop()  # type: ignore[no-untyped-call]


def _apply(entry: KeyValue.Entry, book: ScheduleBook, metrics: TickerMetrics) -> None:
    book.revision = max(book.revision, entry.revision or 0)
    if entry.operation in (KV_DEL, KV_PURGE):
        book.remove(entry.key)
    else:
        spec = _parse(entry.key, entry.value or b"", metrics)
        if spec is not None:
            # nats-py gives the stored time as a datetime, though it annotates int.
            stored = entry.created
            book.put(spec, stored if isinstance(stored, datetime) else None)
    metrics.schedules.set(len(book))


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
