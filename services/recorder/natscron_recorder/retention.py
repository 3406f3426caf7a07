"""Retention: per scheduled job, keep its newest `keep_runs` runs or every run of the
last `keep_days` days, whichever keeps more; ad-hoc runs for `keep_days`. A scheduled job's
decision records (why slots did not fire) go with its runs: those that ended before its
oldest run kept, or before `keep_days`, whichever keeps more.

A background sweep deletes finished runs only, in bounded batches with a pause between
them, so it never holds up recording. Statistics and run history live in their own
documents and are not touched; neither are the scraped items.
"""

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from natscron_shared.contract.enums import JobStatus
from natscron_shared.contract.storage import DECISIONS, JOBS, SCHEDULED_JOBS, Document
from natscron_shared.runtime.clock import Clock

log = logging.getLogger(__name__)

DELETE_BATCH = 500
PAUSE_SECONDS = 0.05
FINISHED = [status.value for status in JobStatus if status.is_terminal]


@dataclass(frozen=True)
class RetentionRule:
    keep_runs: int
    keep_days: float


class RetentionSweep:
    def __init__(self, db: AsyncDatabase[Document], rule: RetentionRule, clock: Clock) -> None:
        self._db = db
        self._rule = rule
        self._clock = clock

    async def run(self, interval_seconds: float) -> None:
        """Sweep every `interval_seconds` until cancelled."""
        while True:
            await self._clock.sleep_until(self._clock.now() + timedelta(seconds=interval_seconds))
            try:
                deleted = await self.sweep()
            except PyMongoError as exc:
                log.warning("retention sweep failed (%s); trying again next time", exc)
                continue
            if deleted:
                log.info("retention removed %d old runs", deleted)

    async def sweep(self) -> int:
        """One pass over every scheduled job and the ad-hoc runs; the runs deleted."""
        too_old = self._clock.now() - timedelta(days=self._rule.keep_days)
        deleted = await self._delete({"scheduled_job_id": None}, too_old)
        async for schedule in self._db[SCHEDULED_JOBS].find({}, {"scheduled_job_id": 1}):
            scheduled_job_id = schedule["scheduled_job_id"]
            nth_newest = await self._newest_kept(scheduled_job_id)
            if nth_newest is not None:  # fewer runs than keep_runs: all are kept
                cutoff = min(too_old, nth_newest)
                deleted += await self._delete({"scheduled_job_id": scheduled_job_id}, cutoff)
                await self._db[DECISIONS].delete_many(
                    {"scheduled_job_id": scheduled_job_id, "ends_at": {"$lt": cutoff}}
                )
        return deleted

    async def _newest_kept(self, scheduled_job_id: str) -> datetime | None:
        """The creation time of the `keep_runs`-th newest run, if there are that many."""
        nth = await (
            self._db[JOBS]
            .find({"scheduled_job_id": scheduled_job_id}, {"created_at": 1})
            .sort("created_at", -1)
            .skip(self._rule.keep_runs - 1)
            .limit(1)
            .to_list()
        )
        return nth[0]["created_at"] if nth else None

    async def _delete(self, owner: Document, before: datetime) -> int:
        query = {**owner, "created_at": {"$lt": before}, "status": {"$in": FINISHED}}
        deleted = 0
        while True:
            ids = [
                doc["_id"]
                for doc in await self._db[JOBS]
                .find(query, {"_id": 1})
                .limit(DELETE_BATCH)
                .to_list()
            ]
            if not ids:
                return deleted
            result = await self._db[JOBS].delete_many({"_id": {"$in": ids}})
            deleted += result.deleted_count
            await asyncio.sleep(PAUSE_SECONDS)
