"""Reads of the recorder's documents (docs/architecture.md, section 5): scheduled jobs,
their runs and statistics. Nothing here writes MongoDB."""

import asyncio
import contextlib
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from natscron_api.cursor import cursor_moment, decode_cursor, encode_cursor
from natscron_api.errors import unknown_job, unknown_scheduled_job
from natscron_api.schedule_directory import ScheduleDirectory
from natscron_api.stats import (
    IDS_PER_QUERY,
    LONGEST_WINDOW_HOURS,
    last_hours,
    merge_stats,
    stats_of,
    windows,
)
from natscron_api.views import (
    ExecutionList,
    ExecutionView,
    HourlyStats,
    JobStats,
    ScheduledJobDetail,
    ScheduledJobList,
    ScheduledJobListItem,
    ScheduledJobView,
    StatsSummary,
)
from natscron_shared.contract.enums import JobStatus, ScheduledJobStatus, Trigger
from natscron_shared.contract.job_stats import ALL_TIME, stats_id, summary
from natscron_shared.contract.storage import (
    JOBS,
    SCHEDULED_JOBS,
    Document,
    JobDocument,
    JobStatsDocument,
    ScheduledJobDocument,
)
from natscron_shared.nats import schedule_bucket
from natscron_shared.runtime.clock import Clock
from natscron_shared.runtime.mongo import job_stats, jobs, scheduled_jobs

RECORDED: Document = {"status": {"$exists": True}}
"""A run whose events the recorder has written: item batches can reach a job's document
first (while its events are held), leaving only their counts there until then."""
HIDDEN_FIELDS = {"_id": 0, "progress": 0, "saved_batches": 0, "revision": 0, "count_flush": 0}
"""Bookkeeping of the recorder's write guards and flushes, not for readers (`_id` is not
JSON)."""
LISTED_RUN_FIELDS = {**HIDDEN_FIELDS, "attempts": 0, "metadata": 0}
"""A page of runs leaves out the detail of each (up to ~20 KiB a run), so that a page of
1,000 fits a NATS reply; one execution shows it."""
RUN_ORDER = [("created_at", DESCENDING), ("job_id", DESCENDING)]
WINDOW_GROWTH = 4
"""Each window of a listing spans this many times the ids of the one before, so a sparse
status takes a few narrow queries rather than one wide one."""
SCAN_BUDGET = 5_000
"""Ids one page with a label selector reads at most (about 0.5 s on SecantusDB)."""
DIRECTORY_WAIT_SECONDS = 10.0


class Queries:
    def __init__(
        self, db: AsyncDatabase[Document], clock: Clock, directory: ScheduleDirectory
    ) -> None:
        self._db = db
        self._clock = clock
        self._directory = directory

    async def list_scheduled_jobs(
        self,
        status: ScheduledJobStatus | None = None,
        selector: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        search: str | None = None,
        count: bool = True,
    ) -> ScheduledJobList:
        """Sorted by id; `search` keeps those whose id or name holds it (any case); `total`
        counts every match unless `count` is false (a count reads every document),
        `next_cursor` pages on. Read in windows of ids the directory bounds
        (`schedule_directory`), each about a page, widened while matches are sparse; with
        a label selector, which no index serves, a page reads at most `SCAN_BUDGET` ids
        and may come back short, with a cursor."""
        query: Document = {}
        if status is not None:
            query["status"] = status.value
        if selector is not None:
            query.update(_label_query(selector))
        after = None if cursor is None else decode_cursor(SCHEDULED_JOBS, cursor, 1)[0]
        await self._directory_loaded()
        budget = SCAN_BUDGET if selector is not None else None
        if search:
            page = await self._page_of_ids(
                query, self._directory.matching(search, after), limit, budget
            )
        else:
            page = await self._page_by_windows(query, after, limit, budget)
        total = None
        if count:
            total = await scheduled_jobs(self._db).count_documents(_searched(query, search))
        return ScheduledJobList(
            scheduled_jobs=await self._with_success_rates(page.docs),
            total=total,
            next_cursor=(
                None
                if page.resume_after is None
                else encode_cursor(SCHEDULED_JOBS, [page.resume_after])
            ),
        )

    async def _directory_loaded(self) -> None:
        """A listing right after the API started waits a little for the directory: without
        it the windows are wide (slow, still right)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(DIRECTORY_WAIT_SECONDS):
                await self._directory.loaded.wait()

    async def _page_by_windows(
        self, query: Document, after: str | None, limit: int, budget: int | None
    ) -> "_Page":
        bounds = self._directory.ids_after(after)
        docs: list[ScheduledJobDocument] = []
        position, width, low = 0, limit + 1, after
        while len(docs) <= limit:
            if budget is not None:
                if position >= budget:
                    return _Page(docs, low)
                width = min(width, budget - position)
            high = bounds[position + width - 1] if position + width <= len(bounds) else None
            window: Document = {}
            if low is not None:
                window["$gt"] = low
            if high is not None:
                window["$lte"] = high
            docs += await self._sorted(
                {**query, "scheduled_job_id": window} if window else query, limit + 1 - len(docs)
            )
            if high is None:
                break
            position, width, low = position + width, width * WINDOW_GROWTH, high
        return _Page.of(docs, limit)

    async def _page_of_ids(
        self, query: Document, ids: Iterator[str], limit: int, budget: int | None
    ) -> "_Page":
        """The documents of `ids` (in order) that match `query`, a page of them."""
        docs: list[ScheduledJobDocument] = []
        read: list[str] = []
        while len(docs) <= limit:
            if budget is not None and len(read) >= budget:
                return _Page(docs, read[-1])
            chunk = list(itertools.islice(ids, IDS_PER_QUERY))
            if not chunk:
                break
            read += chunk
            found = await self._sorted(
                {**query, "scheduled_job_id": {"$in": chunk}}, limit + 1 - len(docs)
            )
            docs += found
        return _Page.of(docs, limit)

    async def _sorted(self, query: Document, limit: int) -> list[ScheduledJobDocument]:
        found = scheduled_jobs(self._db).find(query, HIDDEN_FIELDS).sort("scheduled_job_id", 1)
        return await found.limit(limit).to_list()

    async def _with_success_rates(
        self, docs: list[ScheduledJobDocument]
    ) -> list[ScheduledJobListItem]:
        """Each with its all-time success rate: the page's `job_stats` documents by `_id`."""
        wanted = [stats_id(doc["scheduled_job_id"], ALL_TIME) for doc in docs]
        found: dict[str, JobStatsDocument] = {}
        for start in range(0, len(wanted), IDS_PER_QUERY):
            chunk = wanted[start : start + IDS_PER_QUERY]
            found.update(
                {doc["_id"]: doc async for doc in job_stats(self._db).find({"_id": {"$in": chunk}})}
            )
        return [
            ScheduledJobListItem.model_validate(
                {**doc, "success_rate": summary(found.get(key) or {})["success_rate"]}
            )
            for doc, key in zip(docs, wanted, strict=True)
        ]

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
        query = {"scheduled_job_id": scheduled_job_id, **RECORDED}
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
        query: Document = dict(RECORDED)
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
            page = {"$and": [query, after]}
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
        doc = await jobs(self._db).find_one({"job_id": job_id, **RECORDED}, HIDDEN_FIELDS)
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


@dataclass(frozen=True)
class _Page:
    """A page of documents, and the id to resume after (None: the last page)."""

    docs: list[ScheduledJobDocument]
    resume_after: str | None

    @classmethod
    def of(cls, docs: list[ScheduledJobDocument], limit: int) -> "_Page":
        """`docs` read one past `limit` if more follow."""
        if len(docs) > limit:
            return cls(docs[:limit], docs[limit - 1]["scheduled_job_id"])
        return cls(docs, None)


def _searched(query: Document, search: str | None) -> Document:
    """`query` and the search as MongoDB can count it: the id or name holding the text."""
    if not search:
        return query
    holds = {"$regex": re.escape(search), "$options": "i"}
    return {**query, "$or": [{"scheduled_job_id": holds}, {"name": holds}]}


def _label_query(selector: str) -> Document:
    """Label keys have no dots (`requests.StoredLabelSelector`), so each is one field."""
    return {
        f"labels.{key}": value for key, value in schedule_bucket.parse_selector(selector).items()
    }
