"""Recording a batch of EVENTS messages in one transaction.

The job events of a batch are coalesced per job (its most advanced event wins, and the
attempt records of all of them are folded in), the schedule events per scheduled job
(the newest computation wins). Reads first, then only the writes that move something
forward, so a redelivered or duplicated batch writes nothing. Jobs that became final
here advance their scheduled job's history and the statistics in the same transaction,
so each run counts exactly once.
"""

from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import AsyncMongoClient, InsertOne, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from natscron_recorder.attempts import ended_attempts, fold
from natscron_recorder.auto_pause import crossed
from natscron_recorder.job_document import job_fields, most_advanced, progress
from natscron_recorder.stats import StatsBatch
from natscron_shared.contract.enums import JobStatus
from natscron_shared.contract.messages import JobEvent, ScheduleEvent
from natscron_shared.contract.run_history import HISTORY_FIELDS, FailuresAfter, FinishedRun, advance
from natscron_shared.contract.storage import (
    FINAL,
    JOB_STATS,
    JOBS,
    SCHEDULED_JOBS,
    AttemptFields,
    Document,
)
from natscron_shared.runtime.mongo_transaction import in_transaction

SCHEDULE_FIELDS = {
    "_id": 0,
    "scheduled_job_id": 1,
    "next_run_computed_at": 1,
    "failure_threshold": 1,
    **dict.fromkeys(HISTORY_FIELDS, 1),
}
"""What the transaction reads of a scheduled job: not its spec, but for its threshold."""


@dataclass(frozen=True)
class StoredJob:
    """What the transaction reads of a stored job: its write guard and its attempts."""

    progress: int
    attempts: list[AttemptFields]


AutoPauser = Callable[[str, int, int, datetime], Awaitable[None]]
"""Pauses a scheduled job: (id, consecutive failures, failure_threshold, now)."""


@dataclass(frozen=True)
class EventsRecorded:
    jobs_written: int
    runs_finished: int
    schedules_written: int
    stats_written: int
    scheduled_runs_finished: tuple[tuple[str, JobStatus], ...] = ()
    """(scheduled job id, final status) of each finished run of a scheduled job."""


def coalesce_jobs(events: list[JobEvent]) -> list[JobEvent]:
    by_job: dict[str, list[JobEvent]] = defaultdict(list)
    for event in events:
        by_job[event.job.job_id].append(event)
    return [most_advanced(job_events) for job_events in by_job.values()]


def _progress_of(stored: StoredJob | None) -> int:
    return -1 if stored is None else stored.progress


def coalesce_schedules(events: list[ScheduleEvent]) -> list[ScheduleEvent]:
    newest: dict[str, ScheduleEvent] = {}
    for event in events:
        known = newest.get(event.scheduled_job_id)
        if known is None or event.at > known.at:
            newest[event.scheduled_job_id] = event
    return list(newest.values())


class EventBatchWriter:
    def __init__(
        self,
        client: AsyncMongoClient[Document],
        db: AsyncDatabase[Document],
        auto_pause: AutoPauser | None = None,
    ) -> None:
        self._client = client
        self._db = db
        self._auto_pause = auto_pause

    async def record(
        self, job_events: list[JobEvent], schedule_events: list[ScheduleEvent], now: datetime
    ) -> EventsRecorded:
        jobs = coalesce_jobs(job_events)
        attempts = ended_attempts(job_events)
        schedules = coalesce_schedules(schedule_events)

        async def work(session: AsyncClientSession) -> EventsRecorded:
            return await self._write(session, jobs, attempts, schedules, now)

        return await in_transaction(self._client, work)

    async def _write(
        self,
        session: AsyncClientSession,
        events: list[JobEvent],
        attempts: dict[str, list[AttemptFields]],
        schedule_events: list[ScheduleEvent],
        now: datetime,
    ) -> EventsRecorded:
        stored = await self._stored_jobs(session, [e.job.job_id for e in events])
        forward = [e for e in events if _progress_of(stored.get(e.job.job_id)) < progress(e)]
        writes = [
            write
            for event in events
            if (write := self._job_write(event, stored.get(event.job.job_id), attempts, now))
        ]
        if writes:
            await self._db[JOBS].bulk_write(writes, ordered=False, session=session)
        final = [e for e in forward if progress(e) == FINAL]
        schedules = await self._write_schedules(session, final, schedule_events, now)
        stats = StatsBatch()
        for event in final:
            stats.add_final(event)
        if len(stats):
            await self._db[JOB_STATS].bulk_write(stats.updates(), ordered=False, session=session)
        return EventsRecorded(
            jobs_written=len(writes),
            runs_finished=sum(e.status.is_finished_run for e in final),
            schedules_written=schedules,
            stats_written=len(stats),
            scheduled_runs_finished=tuple(
                (e.job.scheduled_job_id, e.status)
                for e in final
                if e.job.scheduled_job_id is not None and e.status.is_finished_run
            ),
        )

    @staticmethod
    def _job_write(
        event: JobEvent,
        stored: StoredJob | None,
        attempts: dict[str, list[AttemptFields]],
        now: datetime,
    ) -> InsertOne[Document] | UpdateOne | None:
        """The fields of the most advanced event if it moves the job forward, and its
        attempts if the batch's records change them; None when neither.

        A job not stored yet is inserted: on SecantusDB an insert costs about a quarter
        of an upsert that inserts. A concurrent writer inserting it first makes the
        transaction conflict (`DuplicateKeyError`), and it is run again from its reads."""
        before = [] if stored is None else stored.attempts
        after = fold(before, attempts.get(event.job.job_id, []), event.job.max_retries + 1)
        fields: Document = {}
        if _progress_of(stored) < progress(event):
            fields.update(job_fields(event, now))
        if after != before:
            fields["attempts"] = after
        if not fields:
            return None
        if stored is None:
            # Item batches own these two ($inc/$push); the job's first write creates them.
            return InsertOne({**fields, "properties_saved": 0, "saved_batches": []})
        return UpdateOne({"job_id": event.job.job_id}, {"$set": fields})

    async def _stored_jobs(
        self, session: AsyncClientSession, job_ids: list[str]
    ) -> dict[str, StoredJob]:
        if not job_ids:
            return {}
        cursor = self._db[JOBS].find(
            {"job_id": {"$in": job_ids}},
            {"_id": 0, "job_id": 1, "progress": 1, "attempts": 1},
            session=session,
        )
        return {
            doc["job_id"]: StoredJob(int(doc.get("progress", -1)), doc.get("attempts", []))
            async for doc in cursor
        }

    async def _write_schedules(
        self,
        session: AsyncClientSession,
        final: list[JobEvent],
        schedule_events: list[ScheduleEvent],
        now: datetime,
    ) -> int:
        """Run history and next run time, one update per scheduled job. Runs only, and
        only after the jobs are written: the failures count may query them."""
        runs: dict[str, list[FinishedRun]] = defaultdict(list)
        for event in final:
            scheduled_job_id = event.job.scheduled_job_id
            if scheduled_job_id is not None and event.status.is_finished_run:
                finished_at = event.completed_at or event.at
                runs[scheduled_job_id].append(
                    FinishedRun(event.job.job_id, event.status, finished_at, event.duration_ms)
                )
        next_runs = {e.scheduled_job_id: e for e in schedule_events}
        ids = sorted({*runs, *next_runs})
        if not ids:
            return 0
        stored = {
            doc["scheduled_job_id"]: doc
            async for doc in self._db[SCHEDULED_JOBS].find(
                {"scheduled_job_id": {"$in": ids}}, SCHEDULE_FIELDS, session=session
            )
        }
        updates: list[UpdateOne] = []
        for scheduled_job_id in ids:
            known = stored.get(scheduled_job_id, {})
            fields: dict[str, Any] = {}
            if scheduled_job_id in runs:
                fields.update(
                    await advance(
                        known,
                        runs[scheduled_job_id],
                        self._failures_counter(session, scheduled_job_id),
                    )
                )
                await self._pause_if_failing(scheduled_job_id, known, fields, now)
            next_run = next_runs.get(scheduled_job_id)
            computed_at = known.get("next_run_computed_at")
            if next_run is not None and (computed_at is None or next_run.at > computed_at):
                fields.update(
                    next_run_at=next_run.next_run_at,
                    remaining_runs=next_run.remaining_runs,
                    next_run_computed_at=next_run.at,
                )
            if fields:
                updates.append(
                    UpdateOne({"scheduled_job_id": scheduled_job_id}, {"$set": fields}, upsert=True)
                )
        if updates:
            await self._db[SCHEDULED_JOBS].bulk_write(updates, ordered=False, session=session)
        return len(updates)

    async def _pause_if_failing(
        self,
        scheduled_job_id: str,
        known: dict[str, Any],
        history: dict[str, Any],
        now: datetime,
    ) -> None:
        """Before the commit, so that a pause that could not be written keeps the batch."""
        threshold = known.get("failure_threshold")
        before = int(known.get("consecutive_failures") or 0)
        after = int(history["consecutive_failures"])
        if self._auto_pause is not None and crossed(before, after, threshold):
            assert threshold is not None
            await self._auto_pause(scheduled_job_id, after, threshold, now)

    def _failures_counter(
        self, session: AsyncClientSession, scheduled_job_id: str
    ) -> FailuresAfter:
        async def failures_after(after: datetime) -> int:
            return await self._db[JOBS].count_documents(
                {
                    "scheduled_job_id": scheduled_job_id,
                    "status": JobStatus.FAILED.value,
                    "completed_at": {"$gt": after},
                },
                session=session,
            )

        return failures_after
