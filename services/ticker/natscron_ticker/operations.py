"""What the leader does to one scheduled job: adopt it, apply a change, fire its slots.

Each operation returns when the job is next due (None: off the agenda), and the
scheduler puts it back on the agenda only then, so a job has one operation at a time.
A slot's state is saved only after its run request is acked: a leader that dies in
between leaves it to be published again by the next one, and the deterministic job id
makes that a no-op. Writes whose loss only delays something (`ticker_state` after an
acked publish, `ScheduleEvent`s) are counted when they fail, and firing goes on.
"""

import asyncio
import itertools
import logging
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import nats.errors

from natscron_shared.contract.decisions import Decision, DecisionKind
from natscron_shared.contract.enums import ScheduledJobStatus
from natscron_shared.contract.last_runs import LastRun, slots_from_last_run
from natscron_shared.contract.messages import RunRequest, ScheduleEvent, slot_run_request
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.contract.ticker_state import SlotState, fired_runs, runs_left
from natscron_shared.runtime.clock import Clock
from natscron_shared.timing.schedule import SlotSpec, next_fire_after
from natscron_ticker.book import ScheduleBook
from natscron_ticker.bulk_publish import YIELD_EVERY, Framed, Outcome, Stored
from natscron_ticker.catchup import FiringPlan, plan_firing
from natscron_ticker.collector_pause import COLLECTOR_PAUSE
from natscron_ticker.metrics import TickerMetrics
from natscron_ticker.slot_decisions import of_firing, paused, resumed
from natscron_ticker.slot_writers import SlotPublisher, SlotStateStore
from natscron_ticker.state import StateTable

log = logging.getLogger(__name__)

RETRY_AFTER_ERROR = timedelta(seconds=1)
PREPARE_CHUNK = 128
"""Jobs of a burst whose run requests are prepared together, between two yields to the
loop: under 10 ms of work, the most a burst being prepared holds up other slots."""
FOLLOW_UP_CHUNK = 500
"""Jobs of a burst followed up together: their events and states made, then sent; the
next chunk's are made only then, so a big burst's follow-up never holds the loop."""
NATS_ERRORS = (nats.errors.Error, TimeoutError)
MAX_RUNS_REACHED = DecisionKind.MAX_RUNS_REACHED.value


class PrepareCost:
    """What preparing one job of a burst costs, as measured: it varies with the specs (a
    cron walked, a spec parsed back from the book) and the machine, and a burst whose
    preparation outlasts its lead goes out late. Rises at once, falls slowly."""

    MEASURED_FROM = 100
    """Jobs prepared together, at the least, for a measurement to count."""

    def __init__(self, seconds_per_job: float = 60e-6) -> None:
        self.seconds_per_job = seconds_per_job

    def observe(self, jobs: int, seconds: float) -> None:
        if jobs >= self.MEASURED_FROM:
            observed = seconds / jobs
            self.seconds_per_job = max(observed, 0.9 * self.seconds_per_job + 0.1 * observed)


class LeadershipLostError(Exception):
    """The lease went away mid-firing; the next leader goes on from `ticker_state`."""


@dataclass(frozen=True, slots=True)
class _Firing:
    """One job's part of a burst: its slots to fire as of a moment and their run
    requests."""

    spec: ScheduledJob
    state: SlotState
    plan: FiringPlan
    as_of: datetime
    requests: tuple[RunRequest, ...]


_Prepared = tuple[list[_Firing], Framed]
"""A chunk of a burst's firings and their run requests, framed in the same order."""


def _by_time(entries: Sequence[tuple[str, datetime]]) -> list[tuple[datetime, list[str]]]:
    """The ids of `entries` grouped by when they are due, earliest first."""
    groups: dict[datetime, list[str]] = {}
    for scheduled_job_id, when in entries:
        groups.setdefault(when, []).append(scheduled_job_id)
    return sorted(groups.items())


class JobOperations:
    """The operations of one term as leader, on the states it read when it began."""

    def __init__(
        self,
        states: StateTable,
        book: ScheduleBook,
        store: SlotStateStore,
        publisher: SlotPublisher,
        clock: Clock,
        metrics: TickerMetrics,
        ensure_leading: Callable[[], None],
        detach: Callable[[Coroutine[Any, Any, None]], None],
        last_run: Callable[[str], LastRun | None],
        prepare_cost: PrepareCost | None = None,
    ) -> None:
        self._states = states
        self._book = book
        self._store = store
        self._publisher = publisher
        self._clock = clock
        self._metrics = metrics
        self._ensure_leading = ensure_leading
        """Raises `LeadershipLostError`; called right before each run request is sent."""
        self._detach = detach
        self._last_run = last_run
        """The end of a schedule's newest scheduled run, from KV `last_runs`."""
        self._prepare_cost = prepare_cost or PrepareCost()

    def place(self, spec: ScheduledJob, now: datetime) -> tuple[datetime | None, bool] | None:
        """At takeover, without a write: when the job is next due and whether it is to be
        `settle`d, or None when it must be `adopt`ed (paused or resumed since its state
        was saved). A job whose saved state agrees with its spec was announced by the last
        leader; a new one starts from the state `adopt` gives it, and is settled unless it
        is due at once (firing saves and announces it)."""
        saved = self._states.get(spec.scheduled_job_id)
        active = spec.status is ScheduledJobStatus.ACTIVE
        if saved is not None and saved.active != active:
            return None
        known = saved if saved is not None else self._new_state(spec, now)
        due = self._next_slot(spec, known) if active else None
        return due, saved is None and (due is None or due > now)

    async def settle(self, placed: list[tuple[str, datetime | None]], now: datetime) -> None:
        """New jobs placed at takeover (id, when next due): their state saved and their
        next run announced, pipelined, so that the next takeover finds them settled. The
        state sent is the job's current one: a job fired in the meantime has saved a newer
        one, and the later put wins."""
        specs = [(i, due, self._book.get(i)) for i, due in placed]
        states = [
            (i, state)
            for i, _, spec in specs
            if spec is not None and (state := self._state(spec)) is not None
        ]
        events = [self._next_run_event(i, due, now, spec) for i, due, spec in specs]
        saves, announced = await asyncio.gather(
            self._store.save_all(states), self._publisher.announce_all(events)
        )
        self._count_failed_writes(ticker_state=saves, schedule_event=announced)

    async def adopt(self, spec: ScheduledJob, now: datetime) -> datetime | None:
        """When `spec` is next due (None: never, or not active), per its status and state."""
        scheduled_job_id = spec.scheduled_job_id
        known = self._states.get(scheduled_job_id)
        active = spec.status is ScheduledJobStatus.ACTIVE
        if known is None:
            known = self._new_state(spec, now)
            await self._save(scheduled_job_id, known)
            if not active:
                self._record([paused(spec, known.handled_until, now)])
        elif known.active != active:
            # Paused or resumed: nothing of the pause is owed. Saved, so the next leader
            # does not catch the pause up; then recorded (a record lost to a failover
            # leaves only its note unknown: the resume closes the pause all the same).
            since = known.handled_until
            known = known.paused_or_resumed(now, active)
            await self._save(scheduled_job_id, known)
            self._record([resumed(spec, since, now) if active else paused(spec, now, now)])
        next_slot = self._next_slot(spec, known) if active else None
        if next_slot is None or next_slot > now:
            self._announce(scheduled_job_id, next_slot, now)
        return next_slot

    def _next_slot(self, spec: ScheduledJob, known: SlotState) -> datetime | None:
        """None once `max_runs` is used up, so a spent job never goes on the agenda."""
        return next_fire_after(
            self._slots(spec, known), known.handled_until, runs_left=runs_left(spec, known)
        )

    def _slots(self, spec: ScheduledJob, known: SlotState) -> SlotSpec:
        """What `spec` fires by: its own slots, or for an interval `from: last_run` those
        after its previous run's end, which every ticker finds alike (KV `ticker_state`,
        `last_runs` and the time KV stored the spec)."""
        if not spec.counts_from_last_run:
            return spec
        scheduled_job_id = spec.scheduled_job_id
        return slots_from_last_run(
            spec,
            known.last_fired_slot,
            self._last_run(scheduled_job_id),
            self._book.put_at(scheduled_job_id) or known.handled_until,
        )

    def _new_state(self, spec: ScheduledJob, now: datetime) -> SlotState:
        """A job without a saved state is owed the slots since KV stored its spec, as a
        ticker that never stopped would have fired them; a leader that dies before saving
        it leaves the next one the same answer. Kept only when that is not simply when KV
        stored it (no time given, or one ahead of our clock); else it is made again when
        needed (`_state`), since a million new jobs would each hold one until they fire."""
        put_at = self._book.put_at(spec.scheduled_job_id)
        since = now if put_at is None else min(now, put_at)
        state = SlotState(handled_until=since, active=spec.status is ScheduledJobStatus.ACTIVE)
        if since != put_at:
            self._states[spec.scheduled_job_id] = state
        return state

    def _state(self, spec: ScheduledJob) -> SlotState | None:
        """The job's saved state, or the one a new job starts from (None: not known)."""
        saved = self._states.get(spec.scheduled_job_id)
        if saved is not None or self._book.put_at(spec.scheduled_job_id) is None:
            return saved
        return self._new_state(spec, self._clock.now())

    async def refresh(self, scheduled_job_id: str, now: datetime) -> datetime | None:
        """After a change in KV: adopt the new spec, or forget a deleted one."""
        spec = self._book.get(scheduled_job_id)
        if spec is not None:
            return await self.adopt(spec, now)
        if self._states.pop(scheduled_job_id) is not None:
            await self._guard(self._store.forget(scheduled_job_id), "ticker_state")
        self._announce(scheduled_job_id, None, now)
        return None

    async def fire(self, entries: Sequence[tuple[str, datetime]]) -> dict[str, datetime | None]:
        """`_fire`, with the garbage collector held off for a big burst (`CollectorPause`)."""
        with COLLECTOR_PAUSE.during(len(entries)):
            return await self._fire(entries)

    async def _fire(self, entries: Sequence[tuple[str, datetime]]) -> dict[str, datetime | None]:
        """Fire the jobs of `entries` (id, when it is due), due now or soon, as one burst.

        Each job's run requests are prepared (slot maths, message bodies, protocol
        frames) as of the moment it is due (as of now for one already due),
        `PREPARE_CHUNK` jobs between two yields to the loop. The prepared chunks of a
        moment are sent together when it comes, in the order they are due, pipelined,
        without waiting for the acks of the earlier ones; so a slot prepared ahead costs
        only its write at its time. Once all are acked: the `pending`
        events, saved states and next runs of the jobs fired, pipelined too. A job whose
        publish failed is retried a little later from the same state. Returns when each
        job is next due."""
        due: dict[str, datetime | None] = {}
        sends: list[tuple[list[_Firing], asyncio.Task[list[Outcome]]]] = []
        ahead: list[tuple[datetime, _Prepared]] = []  # prepared before their time

        def send(chunks: Iterable[_Prepared]) -> None:
            """One send of chunks, in order: a single write at once for a small slot."""
            parts = list(chunks)
            framed = Framed.joined(framed for _, framed in parts)
            sending = self._publisher.publish_framed(framed, self._ensure_leading)
            firings = [firing for chunk, _ in parts for firing in chunk]
            sends.append((firings, asyncio.create_task(sending)))

        for when, ids in _by_time(entries):
            for start in range(0, len(ids), PREPARE_CHUNK):
                as_of = max(when, self._clock.now())
                chunk = self._prepare(ids[start : start + PREPARE_CHUNK], as_of, due)
                if as_of > self._clock.now():
                    ahead.append((as_of, chunk))
                else:
                    send([*(prepared for _, prepared in ahead), chunk])
                    ahead.clear()
                await asyncio.sleep(0)
        for as_of, chunks in itertools.groupby(ahead, key=lambda prepared: prepared[0]):
            await self._clock.sleep_until(as_of)
            parts = [prepared for _, prepared in chunks]
            if sum(len(framed) for _, framed in parts) > YIELD_EVERY:
                # Smaller sends due at the same moment go first: behind this one's first
                # writes they would wait tens of milliseconds at the server.
                await asyncio.sleep(0)
            send(parts)  # one send per slot
        # Every send first, then the bookkeeping: it must not slow the sends of a burst.
        acked: list[tuple[list[_Firing], list[Outcome], datetime]] = []
        for firings, sent in sends:
            acked.append((firings, await sent, self._clock.now()))
        fired: list[_Firing] = []
        failures: list[BaseException] = []
        for firings, chunk_outcomes, acked_at in acked:
            outcomes = iter(chunk_outcomes)
            for counted, firing in enumerate(firings, 1):
                if counted % PREPARE_CHUNK == 0:
                    await asyncio.sleep(0)  # a big burst's bookkeeping never holds the loop
                scheduled_job_id = firing.spec.scheduled_job_id
                results = [next(outcomes) for _ in firing.requests]
                errors = [r for r in results if isinstance(r, BaseException)]
                if any(isinstance(error, LeadershipLostError) for error in errors):
                    due[scheduled_job_id] = None
                elif errors:
                    failures.append(errors[0])
                    due[scheduled_job_id] = acked_at + RETRY_AFTER_ERROR
                else:
                    self._count(firing, results, acked_at)
                    due[scheduled_job_id] = self._fired(firing)
                    fired.append(firing)
        if failures:
            self._metrics.nats_errors.labels("publish").inc(len(failures))
            log.warning(
                "could not publish the slots of %d scheduled jobs (%s); retrying them",
                len(failures),
                failures[0],
            )
        await self._follow_up(fired, due, self._clock.now())
        return due

    def _prepare(
        self, ids: Sequence[str], as_of: datetime, due: dict[str, datetime | None]
    ) -> "_Prepared":
        """The firings of `ids` at `as_of` (a job without a slot due then fires nothing,
        and is put back at its next slot), with their run requests framed for the wire; a
        job gone from the book is off the agenda."""
        firings = []
        started = time.perf_counter()
        for scheduled_job_id in ids:
            spec = self._book.get(scheduled_job_id)
            state = None if spec is None else self._state(spec)
            if spec is None or state is None:
                due[scheduled_job_id] = None
                continue
            plan = plan_firing(
                spec, state.handled_until, as_of, runs_left(spec, state), self._slots(spec, state)
            )
            parent = self._book.is_parent(scheduled_job_id)
            requests = tuple(
                slot_run_request(spec, slot, as_of, chain_parent=parent) for slot in plan.fire
            )
            firings.append(_Firing(spec, state, plan, as_of, requests))
        framed = self._publisher.frame_runs([r for firing in firings for r in firing.requests])
        self._prepare_cost.observe(len(ids), time.perf_counter() - started)
        return firings, framed

    def _count(self, firing: "_Firing", results: list[Outcome], acked_at: datetime) -> None:
        duplicates = sum(1 for r in results if isinstance(r, Stored) and r.duplicate)
        if duplicates:
            self._metrics.slots_duplicate.inc(duplicates)
        if len(results) > duplicates:
            self._metrics.slots_fired.inc(len(results) - duplicates)
        for request, result in zip(firing.requests, results, strict=True):
            if isinstance(result, Stored) and result.duplicate:
                continue
            assert request.scheduled_for is not None
            self._metrics.fire_lag.observe(
                max(0.0, (acked_at - request.scheduled_for).total_seconds())
            )
        plan = firing.plan
        if plan.skip is not None:
            self._metrics.slots_skipped.labels(plan.skip.kind.value).inc(plan.skip.slots)
        if plan.over_max_runs:
            self._metrics.slots_skipped.labels(MAX_RUNS_REACHED).inc(plan.over_max_runs)

    def _fired(self, firing: "_Firing") -> datetime | None:
        """The job's state once its slots are acked, kept; when it is next due."""
        spec, state, plan = firing.spec, firing.state, firing.plan
        fired = SlotState(
            handled_until=firing.as_of,
            last_fired_slot=plan.fire[-1] if plan.fire else state.last_fired_slot,
            fired_runs=fired_runs(spec, state) + len(plan.fire),
            max_runs=spec.max_runs,
        )
        self._states[spec.scheduled_job_id] = fired
        left = runs_left(spec, fired)
        if plan.fire and left == 0:
            log.info("%s: fired its last run (max_runs=%d)", spec.scheduled_job_id, spec.max_runs)
        if left == 0:
            return None
        if spec.counts_from_last_run:
            return self._next_slot(spec, fired)  # the run just fired has yet to end
        return plan.next_slot

    async def _follow_up(
        self, fired: list["_Firing"], due: dict[str, datetime | None], now: datetime
    ) -> None:
        """After a burst: the `pending` events of its acked requests, the jobs' saved states
        and their next runs, pipelined; a failure is counted, and firing goes on (the
        runner's events carry the request, a new leader fires an unsaved slot again under
        the same job id, a next run is announced again at the next firing)."""
        failed: Counter[str] = Counter()
        for start in range(0, len(fired), FOLLOW_UP_CHUNK):
            chunk = fired[start : start + FOLLOW_UP_CHUNK]
            ids = [firing.spec.scheduled_job_id for firing in chunk]
            events = [
                self._next_run_event(i, due[i], now, firing.spec)
                for i, firing in zip(ids, chunk, strict=True)
            ]
            requests = [r for firing in chunk for r in firing.requests]
            decisions = [
                decision
                for firing, i in zip(chunk, ids, strict=True)
                for decision in of_firing(
                    firing.spec, firing.state, firing.plan, self._states[i], now
                )
            ]
            pending, saves, announced, recorded = await asyncio.gather(
                self._publisher.publish_pending(requests),
                self._store.save_all([(i, self._states[i]) for i in ids]),
                self._publisher.announce_all(events),
                self._publish_decisions(decisions),
            )
            failed.update(
                pending_event=pending,
                ticker_state=saves,
                schedule_event=announced,
                decision=recorded,
            )
        self._count_failed_writes(**failed)

    async def _publish_decisions(self, decisions: Sequence[Decision]) -> int:
        """Publish decision records and count them by kind; how many failed."""
        if not decisions:
            return 0
        for decision in decisions:
            self._metrics.decisions.labels(decision.kind.value).inc()
        return await self._publisher.publish_decisions(decisions)

    def _record(self, decisions: Sequence[Decision]) -> None:
        """Publish decision records without waiting: a lost one leaves its slots "no
        record" in explain, and is counted."""

        async def publish() -> None:
            self._count_failed_writes(decision=await self._publish_decisions(decisions))

        self._detach(publish())

    def _count_failed_writes(self, **failed_by_operation: int) -> None:
        for operation, failed in failed_by_operation.items():
            if failed:
                self._metrics.nats_errors.labels(operation).inc(failed)
                log.warning("%d %s writes failed", failed, operation)

    async def _save(self, scheduled_job_id: str, state: SlotState) -> None:
        self._states[scheduled_job_id] = state
        await self._guard(self._store.save(scheduled_job_id, state), "ticker_state")

    def _announce(self, scheduled_job_id: str, next_slot: datetime | None, now: datetime) -> None:
        """Tell the recorder the next run time and the runs left, without waiting: losing
        one only delays `next_run_at`, and the job need not stay off the agenda for it."""
        self._detach(self._announcement(scheduled_job_id, next_slot, now))

    def _announcement(
        self, scheduled_job_id: str, next_slot: datetime | None, now: datetime
    ) -> Coroutine[Any, Any, None]:
        event = self._next_run_event(
            scheduled_job_id, next_slot, now, self._book.get(scheduled_job_id)
        )
        return self._guard(
            self._publisher.publish_next_run(
                scheduled_job_id, event.next_run_at, now, remaining_runs=event.remaining_runs
            ),
            "schedule_event",
        )

    def _next_run_event(
        self,
        scheduled_job_id: str,
        next_slot: datetime | None,
        now: datetime,
        spec: ScheduledJob | None,
    ) -> ScheduleEvent:
        """The runs left come from the saved state, so a job whose `max_runs` is used up is
        announced without a next run whoever computed `next_slot`."""
        state = None if spec is None else self._state(spec)
        left = None if spec is None or state is None else runs_left(spec, state)
        return ScheduleEvent(
            scheduled_job_id=scheduled_job_id,
            next_run_at=None if left == 0 else next_slot,
            at=now,
            remaining_runs=left,
        )

    async def _guard(self, write: Coroutine[Any, Any, None], operation: str) -> None:
        """Run a write whose failure must not stop firing: count it and go on."""
        try:
            await write
        except NATS_ERRORS as exc:
            self._metrics.nats_errors.labels(operation).inc()
            log.warning("%s write failed: %s", operation, exc)
