"""Seed 004's `GET /api/v1/jobs`: its jobs are natscron's scheduled jobs, listed with its
filter (`status`, in its job states) and pages (`limit`, `offset`).

A scheduled job is `running` while a runner holds a claim on one of its runs (KV `running`,
read now, not the recorder's trailing copy); else its natscron status names the state:
`paused`, `scheduled` (active) or `cancelled` (inactive, deleted or disabled); a document
without a status yet (runs recorded before its spec) is `pending`. The other states seed 004
gives one-off jobs (`completed`, `failed`) match no scheduled job. An `interval` is shown as
seed 004's `interval_minutes` too.
"""

from pymongo.asynchronous.database import AsyncDatabase

from natscron_api.live_state import LiveState
from natscron_api.queries import HIDDEN_FIELDS
from natscron_api.views import CrawlerJob, CrawlerJobList, CrawlerJobStatus
from natscron_shared.contract.enums import ScheduledJobStatus
from natscron_shared.contract.storage import Document, IntervalFields, ScheduledJobDocument
from natscron_shared.runtime.mongo import scheduled_jobs

STATE_OF_STATUS = {
    ScheduledJobStatus.ACTIVE.value: CrawlerJobStatus.SCHEDULED,
    ScheduledJobStatus.PAUSED.value: CrawlerJobStatus.PAUSED,
    ScheduledJobStatus.INACTIVE.value: CrawlerJobStatus.CANCELLED,
}
STATUS_OF_STATE = {state: status for status, state in STATE_OF_STATUS.items()}


class CrawlerJobs:
    def __init__(self, db: AsyncDatabase[Document], live: LiveState) -> None:
        self._db = db
        self._live = live

    async def list(
        self, status: CrawlerJobStatus | None = None, limit: int = 50, offset: int = 0
    ) -> CrawlerJobList:
        """Sorted by id, `offset` skipped; `total` counts every match."""
        claims = await self._live.running_jobs()
        running = sorted({claim.scheduled_job_id for claim in claims if claim.scheduled_job_id})
        query = _query(status, running)
        if query is None:
            return CrawlerJobList(jobs=[], total=0, limit=limit, offset=offset)
        collection = scheduled_jobs(self._db)
        total = await collection.count_documents(query)
        found = collection.find(query, HIDDEN_FIELDS).sort("scheduled_job_id", 1).skip(offset)
        docs = await found.limit(limit).to_list()
        return CrawlerJobList(
            jobs=[_job(doc, set(running)) for doc in docs], total=total, limit=limit, offset=offset
        )


def _query(state: CrawlerJobStatus | None, running: list[str]) -> Document | None:
    """The documents in `state`; None when no scheduled job can be in it."""
    if state is None:
        return {}
    if state is CrawlerJobStatus.RUNNING:
        return {"scheduled_job_id": {"$in": running}}
    if state not in STATUS_OF_STATE:
        return None
    return {"status": STATUS_OF_STATE[state], "scheduled_job_id": {"$nin": running}}


def _job(doc: ScheduledJobDocument, running: set[str]) -> CrawlerJob:
    scheduled_job_id = doc["scheduled_job_id"]
    status = doc.get("status")
    state = (
        CrawlerJobStatus.RUNNING
        if scheduled_job_id in running
        else STATE_OF_STATUS.get(status or "", CrawlerJobStatus.PENDING)
    )
    fields = {
        **doc,
        "interval_minutes": doc.get("interval_minutes") or _minutes(doc.get("interval")),
        "id": scheduled_job_id,
        "status": state,
        "schedule_status": status,
        "is_paused": status == ScheduledJobStatus.PAUSED.value,
    }
    return CrawlerJob.model_validate(fields)


def _minutes(interval: IntervalFields | None) -> float | None:
    if interval is None:
        return None
    return (
        interval["days"] * 1440
        + interval["hours"] * 60
        + interval["minutes"]
        + interval["seconds"] / 60
    )
