"""Reads of the recorder's documents (docs/architecture.md, section 5): scheduled jobs,
their runs and statistics. Nothing here writes MongoDB."""

from datetime import datetime
from typing import Any

from pymongo import DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from natscron_api.cursor import cursor_moment, decode_cursor, encode_cursor
from natscron_api.errors import unknown_job, unknown_scheduled_job
from natscron_api.stats import LONGEST_WINDOW_HOURS, last_hours, merge_stats, stats_of, windows
from natscron_api.views import (
    ExecutionList,
    ExecutionView,
    HourlyStats,
    JobStats,
    ScheduledJobDetail,
    ScheduledJobList,
    ScheduledJobView,
    StatsSummary,
)
from natscron_shared.contract.enums import JobStatus, ScheduledJobStatus, Trigger
from natscron_shared.contract.job_stats import summary
from natscron_shared.contract.storage import JOBS, SCHEDULED_JOBS, Document, JobDocument
from natscron_shared.nats import schedule_bucket
from natscron_shared.runtime.clock import Clock
from natscron_shared.runtime.mongo import jobs, scheduled_jobs

HIDDEN_FIELDS = {"_id": 0, "progress": 0, "saved_batches": 0}
"""Bookkeeping of the recorder's write guards, not for readers (`_id` is not JSON)."""
LISTED_RUN_FIELDS = {**HIDDEN_FIELDS, "attempts": 0, "metadata": 0}
"""A page of runs leaves out the detail of each (up to ~20 KiB a run), so that a page of
1,000 fits a NATS reply; one execution shows it."""
RUN_ORDER = [("created_at", DESCENDING), ("job_id", DESCENDING)]


class Queries:
    def __init__(self, db: AsyncDatabase[Document], clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def list_scheduled_jobs(
        self,
        status: ScheduledJobStatus | None = None,
        selector: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> ScheduledJobList:
        """Sorted by id; `total` counts every match, `next_cursor` pages on."""
        query: Document = {}
        if status is not None:
            query["status"] = status.value
        if selector is not None:
            query.update(_label_query(selector))
        collection = scheduled_jobs(self._db)
        total = await collection.count_documents(query)
        page = dict(query)
        if cursor is not None:
            (last,) = decode_cursor(SCHEDULED_JOBS, cursor, 1)
            page["scheduled_job_id"] = {"$gt": last}
        found = collection.find(page, HIDDEN_FIELDS).sort("scheduled_job_id", 1)
        docs = await found.limit(limit + 1).to_list()
        more = len(docs) > limit
        docs = docs[:limit]
        return ScheduledJobList(
            scheduled_jobs=[ScheduledJobView.model_validate(doc) for doc in docs],
            total=total,
            next_cursor=(
                encode_cursor(SCHEDULED_JOBS, [docs[-1]["scheduled_job_id"]]) if more else None
            ),
        )

    async def scheduled_job(self, scheduled_job_id: str) -> ScheduledJobView:
        doc = await scheduled_jobs(self._db).find_one(
            {"scheduled_job_id": scheduled_job_id}, HIDDEN_FIELDS
        )
        if doc is None:
            raise unknown_scheduled_job(scheduled_job_id)
        return ScheduledJobView.model_validate(doc)

    async def scheduled_job_detail(
        self, scheduled_job_id: str, include_runs: bool = True, limit: int = 50
    ) -> ScheduledJobDetail:
        """The job and its newest `limit` runs (none unless `include_runs`)."""
        job = await self.scheduled_job(scheduled_job_id)
        query = {"scheduled_job_id": scheduled_job_id}
        total = await jobs(self._db).count_documents(query)
        runs: list[JobDocument] = []
        if include_runs:
            found = jobs(self._db).find(query, LISTED_RUN_FIELDS).sort(RUN_ORDER)
            runs = await found.limit(limit).to_list()
        return ScheduledJobDetail(
            scheduled_job=job,
            job_runs=[ExecutionView.model_validate(run) for run in runs],
            total_runs=total,
        )

    async def executions(
        self,
        scheduled_job_id: str | None = None,
        status: JobStatus | None = None,
        trigger: Trigger | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
        offset: int = 0,
    ) -> ExecutionList:
        """Newest first (by `created_at`, then id); `since` inclusive, `until` exclusive;
        `offset` skips that many after the cursor's position (seed 004 pages by offset)."""
        query: Document = {}
        if scheduled_job_id is not None:
            query["scheduled_job_id"] = scheduled_job_id
        if status is not None:
            query["status"] = status.value
        if trigger is not None:
            query["trigger"] = trigger.value
        created: Document = {}
        if since is not None:
            created["$gte"] = since
        if until is not None:
            created["$lt"] = until
        if created:
            query["created_at"] = created
        collection = jobs(self._db)
        total = await collection.count_documents(query)
        page = query
        if cursor is not None:
            moment, last_id = decode_cursor(JOBS, cursor, 2)
            at = cursor_moment(moment)
            after = {
                "$or": [
                    {"created_at": {"$lt": at}},
                    {"created_at": at, "job_id": {"$lt": last_id}},
                ]
            }
            page = {"$and": [query, after]} if query else after
        found = collection.find(page, LISTED_RUN_FIELDS).sort(RUN_ORDER).skip(offset)
        docs = await found.limit(limit + 1).to_list()
        more = len(docs) > limit
        docs = docs[:limit]
        next_cursor = None
        if more:
            last = docs[-1]
            next_cursor = encode_cursor(JOBS, [last["created_at"].isoformat(), last["job_id"]])
        return ExecutionList(
            executions=[ExecutionView.model_validate(doc) for doc in docs],
            total=total,
            next_cursor=next_cursor,
            limit=limit,
            offset=offset,
        )

    async def scheduled_job_executions(
        self, scheduled_job_id: str, **filters: Any
    ) -> ExecutionList:
        await self.scheduled_job(scheduled_job_id)
        return await self.executions(scheduled_job_id=scheduled_job_id, **filters)

    async def execution(self, job_id: str) -> ExecutionView:
        doc = await jobs(self._db).find_one({"job_id": job_id}, HIDDEN_FIELDS)
        if doc is None:
            raise unknown_job(job_id)
        return ExecutionView.model_validate(doc)

    async def job_stats(self, scheduled_job_id: str, hours: int = 24) -> JobStats:
        """All-time counters, and those of the last `hours` UTC hours (the current one
        included), from the `job_stats` documents."""
        await self.scheduled_job(scheduled_job_id)
        now = self._clock.now()
        longest = max(hours, LONGEST_WINDOW_HOURS)
        all_time, hourly = await stats_of(self._db, scheduled_job_id, longest, now)
        asked = last_hours(hourly, hours, now)
        last = await jobs(self._db).find_one(
            {"scheduled_job_id": scheduled_job_id}, HIDDEN_FIELDS, sort=RUN_ORDER
        )
        return JobStats(
            scheduled_job_id=scheduled_job_id,
            all_time=StatsSummary(**summary(all_time or {})),
            **windows(hourly, now),
            recent=StatsSummary(**summary(merge_stats(asked.values()))),
            hours=hours,
            hourly=[HourlyStats(period=p, **summary(doc)) for p, doc in asked.items()],
            last_execution=None if last is None else ExecutionView.model_validate(last),
        )


def _label_query(selector: str) -> Document:
    """Label keys have no dots (`requests.StoredLabelSelector`), so each is one field."""
    return {
        f"labels.{key}": value for key, value in schedule_bucket.parse_selector(selector).items()
    }
