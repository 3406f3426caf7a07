"""`jobs.backfill`: publish a scheduled job's past slots that never ran, answered by any
ticker (the contract is in `natscron_shared.contract.backfill`).

Rules, checked before anything is published:

- the schedule exists in KV `scheduled_jobs` and is active: a paused or inactive one is
  refused (`not_active`); resume it first, then backfill the range wanted;
- it is not an interval `from: last_run`, whose slots follow its runs' ends: it has no
  past slots of its own (`bad_request`);
- `end` is not after the ticker's now, and `start` is within the EVENTS history (its
  `max_age`): a run older than that has lost its events, so it could not be told apart
  from a slot that never ran (`invalid_range`);
- the range holds at most `MAX_BACKFILL_SLOTS` slots (`too_many_slots`);
- a schedule whose `concurrency_policy` is `forbid` or `replace` has at most one slot to
  publish (`overlap_policy`): its runs, queued together, would overlap, and the runners
  would skip (or cancel) all but one.

A slot already has a run when EVENTS holds an event of its job id, which is the id a normal
fire of the slot gets, whatever its status (a failed one is run again with a retry). The
others are published pipelined, on the `normal` lane, with that id as `Nats-Msg-Id`,
so a slot published by the ticker or another backfill within the duplicate window is
stored once, then their `pending` events. `max_runs` and `ticker_state` are neither read
nor changed: the operator asked for these slots, and the ticker's own count is of the
slots it fired.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from itertools import islice

from nats.js import JetStreamContext
from nats.js.errors import KeyDeletedError, KeyNotFoundError
from nats.js.kv import KeyValue
from pydantic import ValidationError

from natscron_shared.contract import names
from natscron_shared.contract.backfill import (
    MAX_BACKFILL_SLOTS,
    BackfillReply,
    BackfillRequest,
    InvalidRangeError,
    NotActiveError,
    OverlapPolicyError,
    TooManySlotsError,
)
from natscron_shared.contract.enums import ConcurrencyPolicy, Priority, ScheduledJobStatus, Trigger
from natscron_shared.contract.errors import (
    BadRequestError,
    UnavailableError,
    UnknownScheduledJobError,
)
from natscron_shared.contract.messages import JobEvent, RunRequest, slot_run_request
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.nats.connection import TRANSIENT_NATS_ERRORS, JetStreamPublisher
from natscron_shared.nats.request_reply import Endpoint
from natscron_shared.runtime.clock import Clock
from natscron_shared.timing.schedule import slots_between
from natscron_ticker.metrics import TickerMetrics
from natscron_ticker.publishing import pending_event

log = logging.getLogger(__name__)

MAX_BACKFILL_BYTES = 4 * 1024
"""A request is an id, two instants and a flag."""
EVENT_READS_IN_FLIGHT = 64
_TICK = timedelta(microseconds=1)


async def events_history(js: JetStreamContext) -> timedelta | None:
    """How long EVENTS keeps a job's events (None: for ever)."""
    info = await js.stream_info(names.STREAM_EVENTS)
    max_age = info.config.max_age
    return timedelta(seconds=max_age) if max_age else None


class BackfillHandler:
    def __init__(
        self,
        specs: KeyValue,
        publisher: JetStreamPublisher,
        clock: Clock,
        metrics: TickerMetrics,
        last_event: Callable[[str], Awaitable[JobEvent | None]],
        history: Callable[[], Awaitable[timedelta | None]],
        is_parent: Callable[[str], bool] = lambda _: False,
    ) -> None:
        self._specs = specs
        self._publisher = publisher
        self._clock = clock
        self._metrics = metrics
        self._last_event = last_event
        """The newest event of a job in EVENTS: a slot has run when its job has one."""
        self._history = history
        """How long EVENTS keeps events (`events_history`)."""
        self._is_parent = is_parent
        """Whether another schedule runs after this one (`ScheduleBook.is_parent`)."""

    def endpoint(self) -> Endpoint[BackfillRequest]:
        """`jobs.backfill`, answered by one ticker of all (the service's queue group)."""
        return Endpoint(
            names.JOBS_BACKFILL,
            BackfillRequest,
            self.handle,
            "Publish a scheduled job's past slots that never ran; any ticker answers",
            max_bytes=MAX_BACKFILL_BYTES,
        )

    async def handle(self, request: BackfillRequest) -> BackfillReply:
        now = self._clock.now()
        spec = await self._spec(request.scheduled_job_id)
        if spec.status is not ScheduledJobStatus.ACTIVE:
            raise NotActiveError(
                f"scheduled job {spec.scheduled_job_id!r} is {spec.status.value}; only an"
                " active schedule is backfilled: resume it first"
            )
        if spec.counts_from_last_run:
            raise BadRequestError(
                f"scheduled job {spec.scheduled_job_id!r} is an interval from its last run: its"
                " slots follow the ends of its runs, so it has no past slots to backfill"
            )
        await self._check_range(request, now)
        slots = self._slots(spec, request)
        parent = self._is_parent(spec.scheduled_job_id)
        runs = [
            slot_run_request(spec, slot, now, Trigger.BACKFILL, Priority.NORMAL, parent)
            for slot in slots
        ]
        missing = await self._without_events(runs)
        unrun = {run.job_id for run in missing}
        existing = [slot for slot, run in zip(slots, runs, strict=True) if run.job_id not in unrun]
        _check_overlap(spec, len(missing))
        if request.dry_run:
            published, skipped = 0, len(runs) - len(missing)
        else:
            published = await self._publish(missing)
            skipped = len(runs) - published
            self._metrics.backfill_slots.labels("published").inc(published)
            self._metrics.backfill_slots.labels("existing").inc(skipped)
        log.info(
            "backfill of %s: %d slots, %d published, %d already had a run%s",
            spec.scheduled_job_id,
            len(slots),
            published,
            skipped,
            " (dry run)" if request.dry_run else "",
        )
        return BackfillReply(
            scheduled_job_id=spec.scheduled_job_id,
            slots=slots,
            existing=existing,
            published=published,
            skipped_existing=skipped,
            dry_run=request.dry_run,
            message=_summary(spec, len(slots), len(missing), skipped, request.dry_run),
        )

    async def _check_range(self, request: BackfillRequest, now: datetime) -> None:
        if request.end > now:
            raise InvalidRangeError(
                f"end ({request.end.isoformat()}) is after now ({now.isoformat()}); only past"
                " slots are backfilled, the ticker fires the others"
            )
        try:
            history = await self._history()
        except TRANSIENT_NATS_ERRORS as exc:
            self._metrics.nats_errors.labels("stream_info").inc()
            raise UnavailableError(f"could not read the EVENTS stream: {exc!r}") from exc
        if history is not None and request.start < now - history:
            raise InvalidRangeError(
                f"start ({request.start.isoformat()}) is before the EVENTS history, which keeps"
                f" {history.days} days ({(now - history).isoformat()}): a run older than that"
                " cannot be told from a slot that never ran; start later"
            )

    @staticmethod
    def _slots(spec: ScheduledJob, request: BackfillRequest) -> list[datetime]:
        """The schedule's slots in `[start, end]`, oldest first, the ticker's own."""
        found = slots_between(spec, request.start - _TICK, request.end)
        slots = list(islice(found, MAX_BACKFILL_SLOTS + 1))
        if len(slots) > MAX_BACKFILL_SLOTS:
            raise TooManySlotsError(
                f"the range holds more than {MAX_BACKFILL_SLOTS} slots of"
                f" {spec.scheduled_job_id!r} (the first {MAX_BACKFILL_SLOTS} end at"
                f" {slots[MAX_BACKFILL_SLOTS - 1].isoformat()}); narrow the range"
            )
        return slots

    async def _without_events(self, runs: Sequence[RunRequest]) -> list[RunRequest]:
        """The runs whose job has no event in EVENTS, read a bounded number at a time."""
        read_event = self._last_event
        room = asyncio.Semaphore(EVENT_READS_IN_FLIGHT)

        async def has_run(run: RunRequest) -> bool:
            async with room:
                return await read_event(run.job_id) is not None

        try:
            found = await asyncio.gather(*(has_run(run) for run in runs))
        except TRANSIENT_NATS_ERRORS as exc:
            self._metrics.nats_errors.labels("events_read").inc()
            raise UnavailableError(f"could not read the jobs' events: {exc!r}") from exc
        return [run for run, ran in zip(runs, found, strict=True) if not ran]

    async def _publish(self, runs: Sequence[RunRequest]) -> int:
        """Publish the run requests, then their `pending` events; how many JetStream stored
        (the others it already had)."""
        if not runs:
            return 0
        try:
            acks = await self._publisher.publish_many(
                [(names.run_subject(run.pool, run.priority), run, run.job_id) for run in runs]
            )
            events = [pending_event(run) for run in runs]
            await self._publisher.publish_many(
                [(names.job_event_subject(e.job.job_id), e, e.msg_id) for e in events]
            )
        except TRANSIENT_NATS_ERRORS as exc:
            self._metrics.nats_errors.labels("publish").inc()
            raise UnavailableError(
                f"could not publish every slot ({exc!r}); the same request again publishes"
                " only the slots still missing"
            ) from exc
        return sum(1 for ack in acks if not ack.duplicate)

    async def _spec(self, scheduled_job_id: str) -> ScheduledJob:
        """Read from KV, not the book, so a job applied a moment ago is already known."""
        try:
            entry = await self._specs.get(scheduled_job_id)
        except (KeyNotFoundError, KeyDeletedError) as exc:
            raise UnknownScheduledJobError(scheduled_job_id) from exc
        except TRANSIENT_NATS_ERRORS as exc:
            self._metrics.nats_errors.labels("kv_get").inc()
            raise UnavailableError(f"could not read the scheduled job: {exc}") from exc
        try:
            return ScheduledJob.model_validate_json(entry.value or b"")
        except ValidationError as exc:
            raise BadRequestError(f"scheduled job {scheduled_job_id!r} is not valid in KV") from exc


def _check_overlap(spec: ScheduledJob, to_publish: int) -> None:
    if spec.concurrency_policy is not ConcurrencyPolicy.ALLOW and to_publish > 1:
        raise OverlapPolicyError(
            f"scheduled job {spec.scheduled_job_id!r} has concurrency_policy"
            f" {spec.concurrency_policy.value} and {to_publish} slots to publish: run"
            " together, all but one would end skipped or cancelled; backfill one slot at a"
            " time, or apply it with concurrency_policy allow first"
        )


def _summary(spec: ScheduledJob, slots: int, missing: int, skipped: int, dry_run: bool) -> str:
    if dry_run:
        return (
            f"Dry run: {missing} of {slots} slots of '{spec.name}' would be published;"
            f" {skipped} already had a run"
        )
    return (
        f"Backfilled {slots - skipped} of {slots} slots of '{spec.name}';"
        f" {skipped} already had a run"
    )
