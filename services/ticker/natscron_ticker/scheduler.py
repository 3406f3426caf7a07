"""The leader's loop: hand each scheduled job's due slots to be fired, sleep until the next.

Only while the lease is held. On taking the lease it puts every job on its agenda at
its first slot after `handled_until`, from the `ticker_state` it has followed all along
(`StateMirror`), so slots missed during downtime or a failover are handled by
`plan_firing`, and the takeover itself writes nothing.

The loop itself only takes due jobs and schedule changes off its agenda and hands them
to `BackgroundWork` as `JobOperations`: a burst of thousands of slots is published
pipelined there while the loop goes on to the next second. A job is off the agenda
while its operation runs, and goes back at the time the operation returns, so it is
never fired again before its state is saved; a change to a job that is being fired is
applied once that firing is done.
"""

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Protocol

from natscron_shared.contract.enums import Priority
from natscron_shared.contract.last_runs import LastRun
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.runtime.clock import Clock
from natscron_ticker.agenda import Agenda
from natscron_ticker.background import BackgroundWork
from natscron_ticker.book import ScheduleBook
from natscron_ticker.metrics import TickerMetrics
from natscron_ticker.operations import JobOperations, LeadershipLostError, PrepareCost
from natscron_ticker.slot_writers import SlotPublisher, SlotStateStore
from natscron_ticker.state_mirror import StateMirror

log = logging.getLogger(__name__)

MAX_CONCURRENT_OPERATIONS = 64
"""Operations (a job adopted, a burst fired) at once; the rest wait their turn in
memory. An operation is mostly CPU (slot maths, messages) between pipelined round trips,
so a few dozen keep the connection busy; more would only queue ahead of lease renewals."""
TAKEOVER_CHUNK = 2_000
"""Jobs placed on the agenda between two yields to the event loop at takeover."""
SETTLE_CHUNK = 5_000
"""New jobs settled (state saved, next run announced) at once, pipelined."""
PREPARE_LEAD = timedelta(milliseconds=500)
"""How long before its slot a job is taken off the agenda and its run request prepared,
so that at the slot only the send is left. Less than the shortest period (a second), so
a job is back on the agenda before its next slot; a change to its spec made within this
lead of a slot applies after that slot."""
PREPARE_MARGIN = 2.0
"""A burst is taken this many times its measured preparation (`PrepareCost`) ahead."""
MAX_PREPARE_LEAD = timedelta(seconds=60)
CHANGE_RANK = 0
FIRING_RANK = {Priority.IMMEDIATE: 0, Priority.NORMAL: 1}
"""In a burst, immediate jobs are sent before normal ones, as runners pull them."""


class Leadership(Protocol):
    """What the scheduler needs of the lease (`LeaderLease`)."""

    leading: asyncio.Event
    standing_by: asyncio.Event

    @property
    def is_leader(self) -> bool: ...


@dataclass
class _Takeover:
    """A term's placing of every job on the agenda, which lasts as long as the book loads."""

    started: datetime
    started_running: float
    placed: int = 0
    adopted: int = 0
    new: list[str] = field(default_factory=list)
    """Placed jobs without a saved state, to settle once all are placed."""
    done: bool = False


class Scheduler:
    def __init__(
        self,
        book: ScheduleBook,
        lease: Leadership,
        states: StateMirror,
        store: SlotStateStore,
        publisher: SlotPublisher,
        clock: Clock,
        metrics: TickerMetrics,
        last_run: Callable[[str], LastRun | None],
    ) -> None:
        self._book = book
        self._lease = lease
        self._states = states
        self._store = store
        self._publisher = publisher
        self._clock = clock
        self._metrics = metrics
        self._last_run = last_run
        self._agenda = Agenda()
        self._changed: set[str] = set()
        self._woken = asyncio.Event()
        self._sleeping_until: datetime | None = None
        self.last_check: datetime | None = None
        """When the leader's loop last looked for due slots (the daemon status shows it)."""
        self._closing = False
        self._prepare_cost = PrepareCost()

    async def run(self) -> None:
        """Lead whenever the lease is held, until cancelled. The specs need not all be
        loaded: while the book loads, each arrives on the agenda as it comes."""
        await self._states.loaded.wait()
        while True:
            await self._lease.leading.wait()
            await self._lead()

    async def _lead(self) -> None:
        self._agenda = Agenda()
        self._changed = set()
        self._woken.clear()
        self._closing = False
        work = BackgroundWork(MAX_CONCURRENT_OPERATIONS, self._put_back, self._woken.set)
        operations = JobOperations(
            self._states.take(),
            self._book,
            self._store,
            self._publisher,
            self._clock,
            self._metrics,
            ensure_leading=self._ensure_leading,
            detach=work.detach,
            last_run=self._last_run,
            prepare_cost=self._prepare_cost,
        )
        takeover = _Takeover(self._clock.now(), time.perf_counter())
        try:
            self._book.take_changes()
            self._book.collect_arrivals(True)
            await self._place(map(self._book.get, self._book.ids()), takeover, work, operations)
            while self._lease.is_leader:
                self._woken.clear()
                work.raise_failure()
                loaded = self._book.loaded.is_set()  # then every arrival is taken now
                arrived = self._book.take_arrivals()
                if arrived:
                    await self._place(arrived, takeover, work, operations)
                if loaded and not takeover.done:
                    self._settle(takeover, work, operations)
                self.last_check = self._clock.now()
                self._dispatch(work, operations, self.last_check)
                self._sleeping_until = self._agenda.next_time()
                await self._wait_for(self._preparing_from(self._sleeping_until))
        except asyncio.CancelledError:
            self._closing = True
            work.cancel()
            raise
        finally:
            self._book.collect_arrivals(False)
            await work.close()
            self._states.give_back()

    async def _place(
        self,
        specs: Iterable[ScheduledJob | None],
        takeover: "_Takeover",
        work: BackgroundWork[datetime | None],
        operations: JobOperations,
    ) -> None:
        """Put jobs on the agenda at takeover, or as the book loads them: without a write
        or a task of their own, except one paused or resumed since its state was saved
        (adopted in the background, since that is saved). New jobs are settled once the
        book is loaded. Due jobs are dispatched after each chunk, so the first slots fire
        while the rest are still being placed."""
        now = self._clock.now()
        remaining = iter(specs)
        while chunk := list(itertools.islice(remaining, TAKEOVER_CHUNK)):
            for spec in chunk:
                if spec is None or spec.scheduled_job_id not in self._book:
                    continue  # removed since
                scheduled_job_id = spec.scheduled_job_id
                if scheduled_job_id in self._changed:
                    continue
                if work.holds(scheduled_job_id):
                    self._changed.add(scheduled_job_id)  # applied once that is done
                    continue
                placed = operations.place(spec, now)
                takeover.placed += 1
                if placed is None:
                    takeover.adopted += 1
                    work.submit(scheduled_job_id, CHANGE_RANK, partial(operations.adopt, spec, now))
                    continue
                due, new = placed
                self._agenda.set(scheduled_job_id, due)
                if new:
                    takeover.new.append(scheduled_job_id)
            self._dispatch(work, operations, self._clock.now())
            await asyncio.sleep(0)
            if not self._lease.is_leader:
                return

    def _settle(
        self,
        takeover: "_Takeover",
        work: BackgroundWork[datetime | None],
        operations: JobOperations,
    ) -> None:
        """Once every job is placed: the new ones settled in the background (their state
        saved, their next run announced: the one on the agenda then; a job being fired
        is settled by its firing)."""
        took = time.perf_counter() - takeover.started_running
        self._metrics.takeovers.inc()
        self._metrics.takeover_seconds.set(took)
        log.info(
            "leading: %d scheduled jobs on the agenda in %.2f s (%d new, %d paused or resumed)",
            takeover.placed,
            took,
            len(takeover.new),
            takeover.adopted,
        )
        new, takeover.new, takeover.done = takeover.new, [], True

        async def settle() -> None:
            for start in range(0, len(new), SETTLE_CHUNK):
                chunk = new[start : start + SETTLE_CHUNK]
                placed = [(i, self._agenda.due(i)) for i in chunk if not work.holds(i)]
                await operations.settle(placed, takeover.started)

        work.detach(settle())

    def _dispatch(
        self, work: BackgroundWork[datetime | None], operations: JobOperations, now: datetime
    ) -> None:
        """Hand schedule changes, then the jobs due by `PREPARE_LEAD` from now, or a bigger
        burst due later whose preparation must start now (immediate first), to the
        background, which prepares their run requests and sends each at its time."""
        self._changed |= self._book.take_changes()
        for scheduled_job_id in [i for i in self._changed if not work.holds(i)]:
            self._changed.discard(scheduled_job_id)
            self._agenda.set(scheduled_job_id, None)
            work.submit(
                scheduled_job_id, CHANGE_RANK, partial(operations.refresh, scheduled_job_id, now)
            )
        by_rank: dict[int, list[tuple[str, datetime]]] = {}
        horizon = now + PREPARE_LEAD
        following = self._agenda.next_time()
        if following is not None and (self._preparing_from(following) or following) <= now:
            horizon = max(horizon, following)
        for entry in self._agenda.pop_due(horizon):
            by_rank.setdefault(self._firing_rank(entry[0]), []).append(entry)
        for rank, entries in sorted(by_rank.items()):
            ids = [scheduled_job_id for scheduled_job_id, _ in entries]
            work.submit_all(ids, rank, partial(operations.fire, entries))

    def _preparing_from(self, when: datetime | None) -> datetime | None:
        """When to take the jobs due at `when` off the agenda: `PREPARE_LEAD` before it, or
        earlier for a burst whose preparation takes longer."""
        if when is None:
            return None
        per_job = self._prepare_cost.seconds_per_job * PREPARE_MARGIN
        cost = timedelta(seconds=self._agenda.due_at(when) * per_job)
        return when - min(max(PREPARE_LEAD, cost), MAX_PREPARE_LEAD)

    def _firing_rank(self, scheduled_job_id: str) -> int:
        priority = self._book.priority(scheduled_job_id)
        return CHANGE_RANK if priority is None else FIRING_RANK[priority]

    def _put_back(self, scheduled_job_id: str, when: datetime | None) -> None:
        """Back on the agenda at `when` (None: off it) once its operation is done. Wake
        the loop only if that is before its sleep ends, or a change waited for this job:
        waking it once per job in a burst of thousands would cost more than the burst."""
        self._agenda.set(scheduled_job_id, when)
        earlier = when is not None and (self._sleeping_until is None or when < self._sleeping_until)
        if earlier or scheduled_job_id in self._changed:
            self._woken.set()

    def _ensure_leading(self) -> None:
        """Checked before a burst's first send and every `bulk_publish.CHECK_EVERY` sends
        after: a ticker that no longer trusts its lease, or that is stopping, sends no
        further slot."""
        if self._closing or not self._lease.is_leader:
            raise LeadershipLostError

    async def _wait_for(self, when: datetime | None) -> None:
        """Sleep until `when`, a schedule change or arrival, the book loaded, a job back
        on the agenda earlier, a failure in the background, or the loss of the lease."""
        waits: list[asyncio.Task[Any]] = [
            asyncio.create_task(self._book.changes.wait()),
            asyncio.create_task(self._lease.standing_by.wait()),
            asyncio.create_task(self._woken.wait()),
        ]
        if when is not None:
            waits.append(asyncio.create_task(self._clock.sleep_until(when)))
        if not self._book.loaded.is_set():
            waits.append(asyncio.create_task(self._book.loaded.wait()))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
            for waiting in waits:
                with contextlib.suppress(asyncio.CancelledError):
                    await waiting
