"""The leader's loop: hand each scheduled job's due slots to be fired, sleep until the next.

Only while the lease is held. On taking the lease it reads `ticker_state` and adopts
every job at its first slot after `handled_until`, so slots missed during downtime or
a failover are handled by `plan_firing`.

The loop itself only takes due jobs and schedule changes off its agenda and hands them
to `BackgroundWork` as `JobOperations`: a burst of thousands of slots is published
pipelined there while the loop goes on to the next second. A job is off the agenda
while its operation runs, and goes back at the time the operation returns, so it is
never fired again before its state is saved; a change to a job that is being fired is
applied once that firing is done.
"""

import asyncio
import contextlib
import logging
from datetime import datetime
from functools import partial
from typing import Any

from natscron_shared.clock import Clock
from natscron_shared.enums import Priority
from natscron_ticker.agenda import Agenda
from natscron_ticker.background import BackgroundWork
from natscron_ticker.book import ScheduleBook
from natscron_ticker.lease import LeaderLease
from natscron_ticker.metrics import TickerMetrics
from natscron_ticker.operations import (
    NATS_ERRORS,
    RETRY_AFTER_ERROR,
    JobOperations,
    LeadershipLostError,
)
from natscron_ticker.publishing import JobPublisher
from natscron_ticker.state import TickerStateStore

log = logging.getLogger(__name__)

MAX_CONCURRENT_OPERATIONS = 256
"""Jobs being adopted or fired at once; the rest of a burst waits its turn in memory.
An operation is mostly CPU (slot maths, messages) between pipelined round trips, so a
few hundred keep the connection busy; more would only queue ahead of lease renewals."""
CHANGE_RANK = 0
FIRING_RANK = {Priority.IMMEDIATE: 0, Priority.NORMAL: 1}
"""In a burst, immediate jobs are sent before normal ones, as runners pull them."""


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
        self._changed: set[str] = set()
        self._woken = asyncio.Event()
        self._sleeping_until: datetime | None = None
        self._closing = False

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
        self._changed = set()
        self._book.take_changes()
        self._woken.clear()
        self._closing = False
        work = BackgroundWork(MAX_CONCURRENT_OPERATIONS, self._put_back, self._woken.set)
        operations = JobOperations(
            await self._store.load_all(),
            self._book,
            self._store,
            self._publisher,
            self._clock,
            self._metrics,
            ensure_leading=self._ensure_leading,
            detach=work.detach,
        )
        try:
            now = self._clock.now()
            for spec in self._book.all():
                work.submit(
                    spec.scheduled_job_id, CHANGE_RANK, partial(operations.adopt, spec, now)
                )
            log.info("leading: adopting %d scheduled jobs", len(self._book))
            while self._lease.is_leader:
                self._woken.clear()
                work.raise_failure()
                self._dispatch(work, operations, self._clock.now())
                self._sleeping_until = self._agenda.next_time()
                await self._wait_for(self._sleeping_until)
        except asyncio.CancelledError:
            self._closing = True
            work.cancel()
            raise
        finally:
            await work.close()

    def _dispatch(
        self, work: BackgroundWork[datetime | None], operations: JobOperations, now: datetime
    ) -> None:
        """Hand schedule changes, then due jobs (immediate first), to the background."""
        self._changed |= self._book.take_changes()
        for scheduled_job_id in [i for i in self._changed if not work.holds(i)]:
            self._changed.discard(scheduled_job_id)
            self._agenda.set(scheduled_job_id, None)
            work.submit(
                scheduled_job_id, CHANGE_RANK, partial(operations.refresh, scheduled_job_id, now)
            )
        for scheduled_job_id in sorted(self._agenda.pop_due(now), key=self._firing_rank):
            work.submit(
                scheduled_job_id,
                self._firing_rank(scheduled_job_id),
                partial(operations.fire, scheduled_job_id, now),
            )

    def _firing_rank(self, scheduled_job_id: str) -> int:
        spec = self._book.get(scheduled_job_id)
        return CHANGE_RANK if spec is None else FIRING_RANK[spec.priority]

    def _put_back(self, scheduled_job_id: str, when: datetime | None) -> None:
        """Back on the agenda at `when` (None: off it) once its operation is done. Wake
        the loop only if that is before its sleep ends, or a change waited for this job:
        waking it once per job in a burst of thousands would cost more than the burst."""
        self._agenda.set(scheduled_job_id, when)
        earlier = when is not None and (self._sleeping_until is None or when < self._sleeping_until)
        if earlier or scheduled_job_id in self._changed:
            self._woken.set()

    def _ensure_leading(self) -> None:
        """Checked right before each run request is sent: a slot is never published by a
        ticker that no longer trusts its lease, or that is stopping."""
        if self._closing or not self._lease.is_leader:
            raise LeadershipLostError

    async def _wait_for(self, when: datetime | None) -> None:
        """Sleep until `when`, a schedule change, a job back on the agenda earlier, a
        failure in the background, or the loss of the lease."""
        waits: list[asyncio.Task[Any]] = [
            asyncio.create_task(self._book.changes.wait()),
            asyncio.create_task(self._lease.standing_by.wait()),
            asyncio.create_task(self._woken.wait()),
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
