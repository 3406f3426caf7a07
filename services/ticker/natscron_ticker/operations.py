"""What the leader does to one scheduled job: adopt it, apply a change, fire its slots.

Each operation returns when the job is next due (None: off the agenda), and the
scheduler puts it back on the agenda only then, so a job has one operation at a time.
A slot's state is saved only after its run request is acked: a leader that dies in
between leaves it to be published again by the next one, and the deterministic job id
makes that a no-op. Writes whose loss only delays something (`ticker_state` after an
acked publish, `ScheduleEvent`s) are counted when they fail, and firing goes on.
"""

import asyncio
import logging
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any

import nats.errors

from natscron_shared.clock import Clock
from natscron_shared.enums import ScheduledJobStatus, Trigger
from natscron_shared.job_ids import scheduled_job_run_id
from natscron_shared.messages import RunRequest, run_request_for
from natscron_shared.models import ScheduledJob
from natscron_shared.schedule import next_fire_after
from natscron_ticker.book import ScheduleBook
from natscron_ticker.catchup import fired_runs, plan_firing, runs_left
from natscron_ticker.metrics import TickerMetrics
from natscron_ticker.publishing import JobPublisher
from natscron_ticker.state import SlotState, TickerStateStore

log = logging.getLogger(__name__)

RETRY_AFTER_ERROR = timedelta(seconds=1)
SETTLE_CHUNK = 512
NATS_ERRORS = (nats.errors.Error, TimeoutError)


class LeadershipLostError(Exception):
    """The lease went away mid-firing; the next leader goes on from `ticker_state`."""


class JobOperations:
    """The operations of one term as leader, on the states it read when it began."""

    def __init__(
        self,
        states: dict[str, SlotState],
        book: ScheduleBook,
        store: TickerStateStore,
        publisher: JobPublisher,
        clock: Clock,
        metrics: TickerMetrics,
        ensure_leading: Callable[[], None],
        detach: Callable[[Coroutine[Any, Any, None]], None],
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

    def place(self, spec: ScheduledJob, now: datetime) -> tuple[datetime | None, bool] | None:
        """At takeover, without a write: when the job is next due and whether it is to be
        `settle`d, or None when it must be `adopt`ed (paused or resumed since its state
        was saved). A job whose saved state agrees with its spec was announced by the last
        leader; a new one gets its state as `adopt` gives it, and is settled unless it is
        due at once (firing saves and announces it)."""
        known = self._states.get(spec.scheduled_job_id)
        active = spec.status is ScheduledJobStatus.ACTIVE
        if known is not None and known.active != active:
            return None
        new = known is None
        if known is None:
            known = self._new_state(spec, now)
        due = self._next_slot(spec, known) if active else None
        return due, new and (due is None or due > now)

    async def settle(self, placed: list[tuple[str, datetime | None]], now: datetime) -> None:
        """New jobs placed at takeover: their state saved and their next run announced, a
        bounded number at a time, so that neither holds up firing and the next takeover
        finds them settled. The state sent is the job's current one: a job fired in the
        meantime has saved a newer one, and the later put wins."""
        for start in range(0, len(placed), SETTLE_CHUNK):
            chunk = placed[start : start + SETTLE_CHUNK]
            await asyncio.gather(*(self._settle(i, due, now) for i, due in chunk))

    async def _settle(self, scheduled_job_id: str, due: datetime | None, now: datetime) -> None:
        state = self._states.get(scheduled_job_id)
        if state is not None:
            await self._guard(self._store.save(scheduled_job_id, state), "ticker_state")
        await self._announcement(scheduled_job_id, due, now)

    async def adopt(self, spec: ScheduledJob, now: datetime) -> datetime | None:
        """When `spec` is next due (None: never, or not active), per its status and state."""
        scheduled_job_id = spec.scheduled_job_id
        known = self._states.get(scheduled_job_id)
        active = spec.status is ScheduledJobStatus.ACTIVE
        if known is None:
            known = self._new_state(spec, now)
            await self._save(scheduled_job_id, known)
        elif known.active != active:
            # Paused or resumed: nothing of the pause is owed. Saved, so the next leader
            # does not catch the pause up.
            known = known.model_copy(update={"handled_until": now, "active": active})
            await self._save(scheduled_job_id, known)
        next_slot = self._next_slot(spec, known) if active else None
        if next_slot is None or next_slot > now:
            self._announce(scheduled_job_id, next_slot, now)
        return next_slot

    @staticmethod
    def _next_slot(spec: ScheduledJob, known: SlotState) -> datetime | None:
        """None once `max_runs` is used up, so a spent job never goes on the agenda."""
        return next_fire_after(spec, known.handled_until, runs_left=runs_left(spec, known))

    def _new_state(self, spec: ScheduledJob, now: datetime) -> SlotState:
        """A job without a saved state is owed the slots since KV stored its spec, as a
        ticker that never stopped would have fired them; a leader that dies before saving
        it leaves the next one the same answer."""
        put_at = self._book.put_at(spec.scheduled_job_id)
        since = now if put_at is None else min(now, put_at)
        state = SlotState(handled_until=since, active=spec.status is ScheduledJobStatus.ACTIVE)
        self._states[spec.scheduled_job_id] = state
        return state

    async def refresh(self, scheduled_job_id: str, now: datetime) -> datetime | None:
        """After a change in KV: adopt the new spec, or forget a deleted one."""
        spec = self._book.get(scheduled_job_id)
        if spec is not None:
            return await self.adopt(spec, now)
        if self._states.pop(scheduled_job_id, None) is not None:
            await self._guard(self._store.forget(scheduled_job_id), "ticker_state")
        self._announce(scheduled_job_id, None, now)
        return None

    async def fire(self, scheduled_job_id: str, now: datetime) -> datetime | None:
        """Publish the due slots, and only once they are acked save the job's state.
        After a failed publish, retry from the same state a little later."""
        spec = self._book.get(scheduled_job_id)
        state = self._states.get(scheduled_job_id)
        if spec is None or state is None:
            return None
        plan = plan_firing(spec, state.handled_until, now, runs_left(spec, state))
        requests = [self._request(spec, slot, now) for slot in plan.fire]
        try:
            await self._publish(requests)
        except LeadershipLostError:
            return None
        except NATS_ERRORS as exc:
            self._metrics.nats_errors.labels("publish").inc()
            log.warning("could not publish %s (%s); retrying", scheduled_job_id, exc)
            return self._clock.now() + RETRY_AFTER_ERROR
        self._metrics.slots_skipped.inc(plan.skipped)
        if plan.skipped:
            log.info(
                "%s: skipped %d missed slots (catchup=%s)",
                spec.scheduled_job_id,
                plan.skipped,
                spec.catchup.value,
            )
        fired = SlotState(
            handled_until=now,
            last_fired_slot=plan.fire[-1] if plan.fire else state.last_fired_slot,
            fired_runs=fired_runs(spec, state) + len(plan.fire),
            max_runs=spec.max_runs,
        )
        await self._save(scheduled_job_id, fired)
        left = runs_left(spec, fired)
        if plan.fire and left == 0:
            log.info("%s: fired its last run (max_runs=%d)", scheduled_job_id, spec.max_runs)
        next_slot = next_fire_after(spec, now, runs_left=left)
        self._announce(scheduled_job_id, next_slot, now)
        return next_slot

    @staticmethod
    def _request(spec: ScheduledJob, slot: datetime, now: datetime) -> RunRequest:
        return run_request_for(
            spec,
            job_id=scheduled_job_run_id(spec.scheduled_job_id, slot),
            trigger=Trigger.SCHEDULED,
            priority=spec.priority,
            created_at=now,
            scheduled_for=slot,
        )

    async def _publish(self, requests: list[RunRequest]) -> None:
        acks = await self._publisher.publish_requests(requests, self._ensure_leading)
        acked_at = self._clock.now()
        for request, ack in zip(requests, acks, strict=True):
            if ack.duplicate:
                self._metrics.slots_duplicate.inc()
                continue
            self._metrics.slots_fired.inc()
            assert request.scheduled_for is not None
            self._metrics.fire_lag.observe(
                max(0.0, (acked_at - request.scheduled_for).total_seconds())
            )
            log.debug("fired %s", request.job_id)
        await self._publisher.publish_pending(requests)

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
        """The runs left come from the saved state, so a job whose `max_runs` is used up is
        announced without a next run whoever computed `next_slot`."""
        spec = self._book.get(scheduled_job_id)
        state = self._states.get(scheduled_job_id)
        left = None if spec is None or state is None else runs_left(spec, state)
        return self._guard(
            self._publisher.publish_next_run(
                scheduled_job_id, None if left == 0 else next_slot, now, remaining_runs=left
            ),
            "schedule_event",
        )

    async def _guard(self, write: Coroutine[Any, Any, None], operation: str) -> None:
        """Run a write whose failure must not stop firing: count it and go on."""
        try:
            await write
        except NATS_ERRORS as exc:
            self._metrics.nats_errors.labels(operation).inc()
            log.warning("%s write failed: %s", operation, exc)
