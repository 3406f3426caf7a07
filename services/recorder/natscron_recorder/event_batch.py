"""Recording EVENTS: jobs written as their events come, runs counted once per flush.

The job events of a batch are coalesced per job (its most advanced event wins, and the
attempt records of all of them are folded in) and written at once (`job_writer.py`), each
job by its own single-document write; the batch is acked after them. The runs they make
final, and the newest next run of each schedule, go into the open flush (`rollup.py`),
which is written every `flush_seconds` or `flush_runs` runs, whichever comes first: one
update per scheduled job and per statistics document (`rollup_writer.py`). No
transactions: nothing a killed recorder leaves open blocks another one, and two recorders
do not conflict but on the few documents they both touch, where the loser reads again.

Exactly once, whatever crashes: a job's final write names its flush (`count_flush`); the
flush is registered open before (`flushes.py`) and closed after its rollup is applied,
which is guarded by the flush id. A batch that failed half-way, or a recorder that died,
leaves jobs whose flush was not applied: that flush is counted again from its jobs (its
own recorder at once, any recorder once it went stale). Schedule events are acked only
once their flush is applied, since nothing else keeps them.
"""

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime

from nats.aio.msg import Msg
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from natscron_recorder.attempts import ended_attempts
from natscron_recorder.flushes import FlushLog
from natscron_recorder.job_document import most_advanced
from natscron_recorder.job_writer import JobWriter
from natscron_recorder.rollup import Rollup
from natscron_recorder.rollup_writer import AutoPauser, RollupWriter
from natscron_shared.contract.enums import JobStatus
from natscron_shared.contract.job_fields import progress
from natscron_shared.contract.messages import JobEvent, ScheduleEvent
from natscron_shared.contract.storage import FINAL, Document
from natscron_shared.nats.connection import settle_quietly

log = logging.getLogger(__name__)

DEFAULT_FLUSH_RUNS = 20_000


@dataclass(frozen=True)
class EventsRecorded:
    jobs_inserted: int
    jobs_updated: int
    runs_finished: int
    scheduled_runs_finished: tuple[tuple[str, JobStatus], ...] = ()
    """(scheduled job id, final status) of each finished run of a scheduled job."""
    ack_now: tuple[Msg, ...] = ()
    """Schedule events' messages a newer event of their schedule makes redundant."""


@dataclass(frozen=True)
class FlushRecorded:
    flushes: int = 0
    schedules_written: int = 0
    stats_written: int = 0
    flush_writes: int = 0
    """`recorder_flushes` documents written (opened, kept alive, deleted)."""


@dataclass
class OpenFlush:
    rollup: Rollup
    registered: bool = False
    """Whether its `recorder_flushes` document is written (before any job naming it)."""
    dirty: bool = False
    """A write of its jobs failed half-way: its rollup is counted again from the jobs."""
    held: dict[str, Msg] = field(default_factory=dict)
    """The message of each schedule's newest event, to ack once the rollup is applied."""

    def add_next_run(self, event: ScheduleEvent, msg: Msg | None) -> Msg | None:
        """Adds a schedule event; the message it makes redundant, to ack now."""
        known = self.rollup.next_runs.get(event.scheduled_job_id)
        if known is not None and event.at <= known.at:
            return msg
        self.rollup.next_runs[event.scheduled_job_id] = event
        older = self.held.pop(event.scheduled_job_id, None)
        if msg is not None:
            self.held[event.scheduled_job_id] = msg
        return older


def coalesce_jobs(events: list[JobEvent]) -> list[JobEvent]:
    by_job: dict[str, list[JobEvent]] = defaultdict(list)
    for event in events:
        by_job[event.job.job_id].append(event)
    return [most_advanced(job_events) for job_events in by_job.values()]


class EventBatchWriter:
    def __init__(
        self,
        client: AsyncMongoClient[Document],
        db: AsyncDatabase[Document],
        auto_pause: AutoPauser | None = None,
        flush_runs: int = DEFAULT_FLUSH_RUNS,
    ) -> None:
        self._db = db
        self._jobs = JobWriter(db)
        self._log = FlushLog(db)
        self._rollups = RollupWriter(db, auto_pause)
        self._flush_runs = flush_runs
        self._lock = asyncio.Lock()
        self._open = OpenFlush(Rollup(self._log.new_id()))
        self._closed: list[OpenFlush] = []
        self.flush_due = asyncio.Event()
        """Set when the open flush holds `flush_runs` runs."""

    async def record(
        self,
        job_events: list[JobEvent],
        schedule_events: list[ScheduleEvent],
        now: datetime,
        schedule_msgs: list[Msg] | None = None,
    ) -> EventsRecorded:
        """Writes the jobs; their runs and the schedule events count in the open flush.
        `schedule_msgs` (the messages of `schedule_events`, in order) are acked by the
        flush, but for those made redundant by a newer event (`ack_now`)."""
        if not job_events and not schedule_events:
            return EventsRecorded(jobs_inserted=0, jobs_updated=0, runs_finished=0)
        jobs = coalesce_jobs(job_events)
        attempts = ended_attempts(job_events)
        async with self._lock:
            flush = self._open
            if not flush.registered and any(progress(e) == FINAL for e in jobs):
                await self._log.open(flush.rollup.flush_id, now)
                flush.registered = True
            try:
                written = await self._jobs.write(jobs, attempts, flush.rollup.flush_id, now)
            except BaseException:
                flush.dirty = True
                raise
            for final in written.finals:
                flush.rollup.add_final(final)
            ack_now = []
            for index, event in enumerate(schedule_events):
                msg = schedule_msgs[index] if schedule_msgs is not None else None
                if (redundant := flush.add_next_run(event, msg)) is not None:
                    ack_now.append(redundant)
            if flush.rollup.runs_finished >= self._flush_runs:
                self.flush_due.set()
        finished = [f for f in written.finals if f.status.is_finished_run]
        return EventsRecorded(
            jobs_inserted=written.inserts,
            jobs_updated=written.updates,
            runs_finished=len(finished),
            scheduled_runs_finished=tuple(
                (f.scheduled_job_id, f.status) for f in finished if f.scheduled_job_id is not None
            ),
            ack_now=tuple(ack_now),
        )

    async def flush(self, now: datetime) -> FlushRecorded:
        """Applies the open flush (and any earlier one not applied yet), then counts again
        the flushes of recorders that died. Raises if MongoDB fails: call it again."""
        if self._open.registered or self._closed:
            await self._log.keep_alive(now)
        async with self._lock:
            self.flush_due.clear()
            flush = self._open
            if not flush.rollup.empty or flush.registered or flush.held:
                self._closed.append(flush)
                self._open = OpenFlush(Rollup(self._log.new_id()))
        recorded = FlushRecorded()
        while self._closed:
            recorded = _add(recorded, await self._apply(self._closed[0], now))
            for msg in self._closed.pop(0).held.values():
                await settle_quietly(msg.ack(), "ack", f"a message on {msg.subject}")
        for flush_id in await self._log.stale(now):
            log.warning("counting again flush %s of a recorder that stopped", flush_id)
            stale = OpenFlush(Rollup(flush_id), registered=True, dirty=True)
            recorded = _add(recorded, await self._apply(stale, now))
        return replace(recorded, flush_writes=self._log.take_writes())

    async def _apply(self, flush: OpenFlush, now: datetime) -> FlushRecorded:
        rollup = flush.rollup
        if flush.dirty:
            recounted = await self._log.recount(rollup.flush_id)
            recounted.next_runs = rollup.next_runs
            rollup = recounted
        written = await self._rollups.apply(rollup, now)
        if flush.registered:
            await self._log.close(rollup.flush_id)
        return FlushRecorded(1, written.schedules_written, written.stats_written)


def _add(a: FlushRecorded, b: FlushRecorded) -> FlushRecorded:
    return FlushRecorded(
        a.flushes + b.flushes,
        a.schedules_written + b.schedules_written,
        a.stats_written + b.stats_written,
    )
