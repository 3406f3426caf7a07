"""Following KV `scheduled_jobs` into the schedule book: a watch, never a poll.

Not through nats-py's `KeyValue.watch`, which for every entry builds a `Msg.metadata`, an
`Entry` and passes it through a queue to an iterator: through it a million specs took
36.0-36.9 s to load, without it 28.8 s, against a 30 s target (bench/scale.py in
bench/RESULTS.md). The same ordered consumer (last value per key, then every change)
applies each message to the book in its callback, reading the revision, stored time and
pending count from the ack subject.

It relies only on public interfaces, none of nats-py's internals: nats-py's public
`JetStreamContext.subscribe` (an ordered consumer, which nats-py restarts from the last
stream sequence it delivered after a gap or a lost consumer); the KV layout on JetStream
(ADR-8: stream `KV_<bucket>`, subjects `$KV.<bucket>.<key>`, a delete or purge marked by
the `KV-Operation` header, nats-py's `KV_OP`, `KV_DEL`, `KV_PURGE`; nats-server 2.11+'s
removal markers by `Nats-Marker-Reason`); and the ack subject of a JetStream delivery
(ADR-15, `_ack_fields`). What nats-py's watch does beyond that (its `KeyWatcher` iterator,
`headers_only`, `include_history`) the ticker does not use.

While the book loads, what it has so far is moved out of the cyclic garbage collector's
sight (`gc.freeze`) every `FREEZE_EVERY` specs, and once more when it is loaded: the book,
the states and the agenda of a million schedules live as long as the process, and a full
collection that walked them would pause the loop for 0.1-0.8 s each time, again and again
as the heap grows (bench/RESULTS.md). Nothing of theirs forms cycles, so nothing is kept
that a collection would have freed.
"""

import asyncio
import gc
import logging

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy
from nats.js.kv import KV_DEL, KV_MARKER_REASON, KV_OP, KV_PURGE
from pydantic import ValidationError

from natscron_shared.contract import names
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.nats.jetstream_layout import kv_stream_name
from natscron_shared.nats.kv_watch import InitialValues
from natscron_ticker.book import ScheduleBook
from natscron_ticker.metrics import TickerMetrics

log = logging.getLogger(__name__)

FREEZE_EVERY = 50_000
INACTIVE_THRESHOLD_SECONDS = 300.0
"""How long the server keeps the watch's consumer once this ticker is gone."""
REMOVED_MARKERS = ("MaxAge", "Purge", "Remove")
"""`Nats-Marker-Reason`s of the markers nats-server 2.11+ leaves for a removed key; a
marker of any other reason is passed over, as nats-py's own watch does."""


class ScheduleFollower:
    """Applies each delivery of the watch on `scheduled_jobs` to the book (`on_message`),
    and sets the book loaded once the initial values are in (`check_loaded`)."""

    def __init__(self, book: ScheduleBook, metrics: TickerMetrics) -> None:
        self._book = book
        self._metrics = metrics
        self._prefix = f"$KV.{names.KV_SCHEDULED_JOBS}."
        self._initial: InitialValues | None = None
        self._caught_up = False
        """Whether the last message delivered had nothing pending after it."""
        self.failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        """Holds what went wrong applying a message: nats-py would only log an error
        raised in a callback, and the book would silently miss the spec."""

    async def on_message(self, msg: Msg) -> None:
        try:
            self._apply(msg)
        except Exception as exc:
            if not self.failed.done():
                self.failed.set_exception(exc)

    def _apply(self, msg: Msg) -> None:
        revision, stored_at, pending = ack_fields(msg.reply)
        book = self._book
        book.revision = max(book.revision, revision)
        key = msg.subject[len(self._prefix) :]
        headers = msg.headers or {}
        reason = headers.get(KV_MARKER_REASON)
        if headers.get(KV_OP) in (KV_DEL, KV_PURGE) or reason in REMOVED_MARKERS:
            book.remove(key)
        elif reason is None and (spec := _parse(key, msg.data, self._metrics)) is not None:
            book.put(spec, stored_at)
        self._caught_up = pending == 0
        if book.loaded.is_set():
            self._metrics.schedules.set(len(book))
        elif self._initial is not None:
            self.check_loaded(self._initial)
        elif len(book) % FREEZE_EVERY == 0:
            gc.freeze()

    def check_loaded(self, initial: InitialValues) -> None:
        """Set the book loaded once every value the bucket held when the watch began is
        in (see `InitialValues`)."""
        self._initial = initial
        if self._book.loaded.is_set():
            return
        if initial.complete_with(caught_up=self._caught_up):
            gc.freeze()
            self._metrics.schedules.set(len(self._book))
            self._book.loaded.set()
            log.info("the schedule book is loaded: %d scheduled jobs", len(self._book))
        elif len(self._book) % FREEZE_EVERY == 0:
            gc.freeze()


def ack_fields(reply: str) -> tuple[int, float, int]:
    """The stream sequence (the KV revision), stored time (POSIX seconds) and messages
    pending of a JetStream delivery, from its ack subject: `$JS.ACK.<stream>.<consumer>.
    <delivered>.<stream seq>.<consumer seq>.<timestamp ns>.<pending>`, or the same after
    `<domain>.<account hash>` and with a token at the end (ADR-15)."""
    tokens = reply.split(".")
    base = 2 if len(tokens) == 9 else 4
    return int(tokens[base + 3]), int(tokens[base + 5]) / 1e9, int(tokens[base + 6])


async def follow_schedules(
    js: JetStreamContext, book: ScheduleBook, metrics: TickerMetrics
) -> None:
    """Apply every put and delete to `book` until cancelled; raises what went wrong
    applying one, which fails the ticker rather than leave it firing from a book with a
    hole in it."""
    follower = ScheduleFollower(book, metrics)
    subscription = await js.subscribe(
        f"$KV.{names.KV_SCHEDULED_JOBS}.>",
        stream=kv_stream_name(names.KV_SCHEDULED_JOBS),
        cb=follower.on_message,
        ordered_consumer=True,
        deliver_policy=DeliverPolicy.LAST_PER_SUBJECT,
        inactive_threshold=INACTIVE_THRESHOLD_SECONDS,
    )
    try:
        follower.check_loaded(await InitialValues.of(await js.key_value(names.KV_SCHEDULED_JOBS)))
        await follower.failed
    finally:
        await subscription.unsubscribe()


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
