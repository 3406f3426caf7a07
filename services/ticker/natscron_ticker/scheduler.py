"""The leader's loop: fire each scheduled job's due slots, sleep until the next one.

Only while the lease is held. On taking the lease it reads `ticker_state` and puts
every active job on the agenda at its first slot after `handled_until`, so slots
missed during downtime or a failover are handled by `plan_firing`. A slot's state
is saved after it is published: a leader that dies in between leaves it to be
published again by the next one, and the deterministic job id makes that a no-op.
"""

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from datetime import datetime, timedelta
from typing import Any

import nats.errors

from natscron_shared.clock import Clock
from natscron_shared.enums import ScheduledJobStatus, Trigger
from natscron_shared.job_ids import scheduled_job_run_id
from natscron_shared.messages import run_request_for
from natscron_shared.models import ScheduledJob
from natscron_shared.schedule import next_fire_after
from natscron_ticker.agenda import Agenda
from natscron_ticker.book import ScheduleBook
from natscron_ticker.catchup import plan_firing
from natscron_ticker.lease import LeaderLease
from natscron_ticker.metrics import TickerMetrics
from natscron_ticker.publishing import JobPublisher
from natscron_ticker.state import SlotState, TickerStateStore

log = logging.getLogger(__name__)

RETRY_AFTER_ERROR = timedelta(seconds=1)
MAX_CONCURRENT_FIRINGS = 32
NATS_ERRORS = (nats.errors.Error, TimeoutError)


class LeadershipLostError(Exception):
    """The lease went away mid-firing; the next leader goes on from `ticker_state`."""


class Scheduler:
    def __init__(
        self,
        book: ScheduleBook,
        lease: LeaderLease,
        store: TickerStateStore,
        publisher: JobPublisher,
        clock: Clock,
        metrics: TickerMetrics,
    ) -> None:
        self._book = book
        self._lease = lease
        self._store = store
        self._publisher = publisher
        self._clock = clock
        self._metrics = metrics
        self._agenda = Agenda()
        self._states: dict[str, SlotState] = {}
        self._firing = asyncio.Semaphore(MAX_CONCURRENT_FIRINGS)

    async def run(self) -> None:
        """Lead whenever the lease is held, until cancelled."""
        await self._book.loaded.wait()
        while True:
            await self._lease.leading.wait()
            try:
                await self._lead()
            except NATS_ERRORS as exc:
                self._metrics.nats_errors.labels("ticker_state").inc()
                log.warning("could not read ticker_state (%s); retrying", exc)
                await self._wait_for(self._clock.now() + RETRY_AFTER_ERROR)

    async def _lead(self) -> None:
        self._agenda = Agenda()
        self._book.take_changes()
        self._states = await self._store.load_all()
        now = self._clock.now()
        for spec in self._book.all():
            await self._adopt(spec, now)
        log.info("leading: %d scheduled jobs on the agenda", len(self._agenda))
        while self._lease.is_leader:
            now = self._clock.now()
            for scheduled_job_id in self._book.take_changes():
                await self._refresh(scheduled_job_id, now)
            due = self._agenda.pop_due(now)
            if due:
                await asyncio.gather(*(self._fire(spec_id, now) for spec_id in due))
            else:
                await self._wait_for(self._agenda.next_time())

    async def _adopt(self, spec: ScheduledJob, now: datetime) -> None:
        """Put `spec` on the agenda (or take it off) according to its status and state."""
        scheduled_job_id = spec.scheduled_job_id
        known = self._states.get(scheduled_job_id)
        active = spec.status is ScheduledJobStatus.ACTIVE
        if known is None or known.active != active:
            # New, paused or resumed: nothing before now is owed.
            last = None if known is None else known.last_fired_slot
            known = SlotState(handled_until=now, last_fired_slot=last, active=active)
            await self._save(scheduled_job_id, known)
        if not active:
            self._agenda.set(scheduled_job_id, None)
            return
        next_slot = next_fire_after(spec, known.handled_until)
        self._agenda.set(scheduled_job_id, next_slot)
        if next_slot is None or next_slot > now:
            await self._announce(scheduled_job_id, next_slot, now)

    async def _refresh(self, scheduled_job_id: str, now: datetime) -> None:
        spec = self._book.get(scheduled_job_id)
        if spec is not None:
            await self._adopt(spec, now)
            return
        self._agenda.set(scheduled_job_id, None)
        if self._states.pop(scheduled_job_id, None) is not None:
            await self._guard(self._store.forget(scheduled_job_id), "ticker_state")
        await self._announce(scheduled_job_id, None, now)

    async def _fire(self, scheduled_job_id: str, now: datetime) -> None:
        spec = self._book.get(scheduled_job_id)
        state = self._states.get(scheduled_job_id)
        if spec is None or state is None:
            return
        async with self._firing:
            plan = plan_firing(spec, state.handled_until, now)
            try:
                for slot in plan.fire:
                    await self._publish_slot(spec, slot, now)
            except LeadershipLostError:
                return
            except NATS_ERRORS as exc:
                self._metrics.nats_errors.labels("publish").inc()
                log.warning("could not publish %s (%s); retrying", scheduled_job_id, exc)
                self._agenda.set(scheduled_job_id, now + RETRY_AFTER_ERROR)
                return
            self._metrics.slots_skipped.inc(plan.skipped)
            if plan.skipped:
                log.info(
                    "%s: skipped %d missed slots (catchup=%s)",
                    spec.scheduled_job_id,
                    plan.skipped,
                    spec.catchup.value,
                )
            last = plan.fire[-1] if plan.fire else state.last_fired_slot
            await self._save(scheduled_job_id, SlotState(handled_until=now, last_fired_slot=last))
            next_slot = next_fire_after(spec, now)
            self._agenda.set(scheduled_job_id, next_slot)
            await self._announce(scheduled_job_id, next_slot, now)

    async def _publish_slot(self, spec: ScheduledJob, slot: datetime, now: datetime) -> None:
        if not self._lease.is_leader:
            raise LeadershipLostError
        request = run_request_for(
            spec,
            job_id=scheduled_job_run_id(spec.scheduled_job_id, slot),
            trigger=Trigger.SCHEDULED,
            priority=spec.priority,
            created_at=now,
            scheduled_for=slot,
        )
        if await self._publisher.publish_job(request):
            self._metrics.slots_fired.inc()
            self._metrics.fire_lag.observe(max(0.0, (self._clock.now() - slot).total_seconds()))
            log.debug("fired %s", request.job_id)
        else:
            self._metrics.slots_duplicate.inc()

    async def _save(self, scheduled_job_id: str, state: SlotState) -> None:
        self._states[scheduled_job_id] = state
        await self._guard(self._store.save(scheduled_job_id, state), "ticker_state")

    async def _announce(
        self, scheduled_job_id: str, next_slot: datetime | None, now: datetime
    ) -> None:
        """Tell the recorder the next run time; losing one only delays `next_run_at`."""
        await self._guard(
            self._publisher.publish_next_run(scheduled_job_id, next_slot, now), "schedule_event"
        )

    async def _guard(self, write: Coroutine[Any, Any, None], operation: str) -> None:
        """Run a write whose failure must not stop firing: count it and go on."""
        try:
            await write
        except NATS_ERRORS as exc:
            self._metrics.nats_errors.labels(operation).inc()
            log.warning("%s write failed: %s", operation, exc)

    async def _wait_for(self, when: datetime | None) -> None:
        """Sleep until `when`, a schedule change or the loss of the lease."""
        waits: list[asyncio.Task[Any]] = [
            asyncio.create_task(self._book.changes.wait()),
            asyncio.create_task(self._lease.standing_by.wait()),
        ]
        if when is not None:
            waits.append(asyncio.create_task(self._clock.sleep_until(when)))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
            for waiting in waits:
                with contextlib.suppress(asyncio.CancelledError):
                    await waiting
