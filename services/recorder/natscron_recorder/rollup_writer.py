"""Writing one flush's rollup: one guarded update per scheduled job, one per statistics
document, no transaction.

Each update is conditional on the flush not being applied yet (`applied_flushes`), so a
flush applied again, by its recorder after an unknown outcome or by another one counting
a dead recorder's flush again, changes nothing. A scheduled job's update is also
conditional on the `run_count` it was computed from: if another writer advanced the
history in between, it is read again and computed again.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from natscron_recorder.auto_pause import crossed
from natscron_recorder.guarded import DUPLICATE_KEY, guarded_bulk_upsert
from natscron_recorder.rollup import Rollup
from natscron_recorder.stats import applied
from natscron_shared.contract.enums import JobStatus
from natscron_shared.contract.run_history import HISTORY_FIELDS, FailuresAfter, advance
from natscron_shared.contract.storage import (
    JOB_STATS,
    JOBS,
    RECORDER_FLUSHES,
    SCHEDULED_JOBS,
    Document,
)

SCHEDULE_FIELDS = {
    "_id": 0,
    "scheduled_job_id": 1,
    "next_run_computed_at": 1,
    "failure_threshold": 1,
    "applied_flushes": 1,
    **dict.fromkeys(HISTORY_FIELDS, 1),
}
"""What a flush reads of a scheduled job: not its spec, but for its threshold."""
MAX_RACES = 20
CHUNK = 1000
"""Scheduled jobs read and written per round trip."""

AutoPauser = Callable[[str, int, int, datetime], Awaitable[None]]
"""Pauses a scheduled job: (id, consecutive failures, failure_threshold, now)."""


class RollupRaceError(Exception):
    """A scheduled job's history kept changing under the flush: it is applied again later."""


@dataclass(frozen=True)
class RollupWritten:
    schedules_written: int
    stats_written: int


class RollupWriter:
    def __init__(self, db: AsyncDatabase[Document], auto_pause: AutoPauser | None) -> None:
        self._db = db
        self._auto_pause = auto_pause

    async def apply(self, rollup: Rollup, now: datetime) -> RollupWritten:
        """Idempotent: a flush applied before changes nothing."""
        ids = sorted({*rollup.runs, *rollup.next_runs})
        schedules = 0
        for start in range(0, len(ids), CHUNK):
            schedules += await self._apply_schedules(rollup, ids[start : start + CHUNK], now)
        writes = rollup.stats.guarded_writes(rollup.flush_id)
        await guarded_bulk_upsert(self._db[JOB_STATS], writes)
        return RollupWritten(schedules_written=schedules, stats_written=len(writes))

    async def _apply_schedules(self, rollup: Rollup, ids: list[str], now: datetime) -> int:
        """One read and one bulk write for the chunk; a schedule whose update lost a race
        (or whose outcome the bulk write does not tell) is done again on its own."""
        stored = {
            doc["scheduled_job_id"]: doc
            async for doc in self._db[SCHEDULED_JOBS].find(
                {"scheduled_job_id": {"$in": ids}}, SCHEDULE_FIELDS
            )
        }
        planned = [
            (scheduled_job_id, write)
            for scheduled_job_id in ids
            if (
                write := await self._write(
                    rollup, scheduled_job_id, stored.get(scheduled_job_id, {}), now
                )
            )
        ]
        if not planned:
            return 0
        try:
            result = await self._db[SCHEDULED_JOBS].bulk_write(
                [write for _, write in planned], ordered=False
            )
        except BulkWriteError as exc:
            if exc.details.get("writeConcernErrors") or any(
                error["code"] != DUPLICATE_KEY for error in exc.details.get("writeErrors", [])
            ):
                raise
            result = None
        if result is not None and result.matched_count + result.upserted_count == len(planned):
            return len(planned)
        return sum([await self._apply_schedule(rollup, sid, now) for sid, _ in planned])

    async def _apply_schedule(self, rollup: Rollup, scheduled_job_id: str, now: datetime) -> int:
        collection = self._db[SCHEDULED_JOBS]
        for _ in range(MAX_RACES):
            known = await collection.find_one(
                {"scheduled_job_id": scheduled_job_id}, SCHEDULE_FIELDS
            )
            write = await self._write(rollup, scheduled_job_id, known or {}, now)
            if write is None:
                return 0
            try:
                result = await collection.bulk_write([write])
            except BulkWriteError:
                continue  # created meanwhile (the mirror, another recorder): read it again
            if result.matched_count or result.upserted_count:
                return 1
        raise RollupRaceError(f"the history of {scheduled_job_id} kept changing")

    async def _write(
        self, rollup: Rollup, scheduled_job_id: str, known: Document, now: datetime
    ) -> UpdateOne | None:
        """The guarded update of one scheduled job; None if the flush is applied there."""
        if rollup.flush_id in known.get("applied_flushes", []):
            return None
        fields = await self._fields(rollup, scheduled_job_id, known, now)
        query = {
            "scheduled_job_id": scheduled_job_id,
            "applied_flushes": {"$ne": rollup.flush_id},
            "run_count": known.get("run_count"),
        }
        update: Document = {"$push": applied(rollup.flush_id)}
        if fields:
            update["$set"] = fields
        return UpdateOne(query, update, upsert=not known)

    async def _fields(
        self, rollup: Rollup, scheduled_job_id: str, known: Document, now: datetime
    ) -> Document:
        fields: Document = {}
        runs = rollup.runs.get(scheduled_job_id)
        if runs:
            counted = {rollup.flush_id, *known.get("applied_flushes", [])}
            counter = self._failures_counter(scheduled_job_id, counted)
            fields.update(await advance(known, runs, counter))
            await self._pause_if_failing(scheduled_job_id, known, fields, now)
        next_run = rollup.next_runs.get(scheduled_job_id)
        computed_at = known.get("next_run_computed_at")
        if next_run is not None and (computed_at is None or next_run.at > computed_at):
            fields.update(
                next_run_at=next_run.next_run_at,
                remaining_runs=next_run.remaining_runs,
                next_run_computed_at=next_run.at,
            )
        return fields

    async def _pause_if_failing(
        self, scheduled_job_id: str, known: dict[str, Any], history: dict[str, Any], now: datetime
    ) -> None:
        """Before the update, so that a pause that could not be written keeps the flush."""
        threshold = known.get("failure_threshold")
        before = int(known.get("consecutive_failures") or 0)
        after = int(history["consecutive_failures"])
        if self._auto_pause is not None and crossed(before, after, threshold):
            assert threshold is not None
            await self._auto_pause(scheduled_job_id, after, threshold, now)

    def _failures_counter(self, scheduled_job_id: str, counted: set[str]) -> FailuresAfter:
        """Counts the failures already in the history (`counted`: this flush and those
        applied to it; a flush no longer open is applied everywhere), not those of flushes
        still to be applied here, which add theirs when they are. Called only for a
        completion recorded before an already counted failure."""

        async def failures_after(after: datetime) -> int:
            open_flushes = {
                doc["_id"] async for doc in self._db[RECORDER_FLUSHES].find({}, {"_id": 1})
            } - counted
            failures = self._db[JOBS].find(
                {
                    "scheduled_job_id": scheduled_job_id,
                    "status": JobStatus.FAILED.value,
                    "completed_at": {"$gt": after},
                },
                {"_id": 0, "count_flush": 1},
            )
            return sum([doc.get("count_flush") not in open_flushes async for doc in failures])

        return failures_after
