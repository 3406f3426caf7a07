"""Many jobs cancelled at once (seed 004 asks for bulk operations): named by id, or every job
not yet final of the scheduled jobs a label selector picks. Each job's cancel is its own
`jobs.cancel` request (`Commands.cancel_many`), so each gets its own outcome.

A selector picks scheduled jobs by their labels in KV `scheduled_jobs` (as bulk pause picks
them), then their jobs that are pending or running in MongoDB, and those a runner holds a
claim on in KV `running` (the recorder's copy may trail). More than `MAX_BULK_CANCEL` jobs is
`too_many_jobs`, and nothing is cancelled: narrow the selector, or name the ids.
"""

from collections.abc import Sequence

from pymongo.asynchronous.database import AsyncDatabase

from natscron_api.commands import Commands
from natscron_api.errors import ApiError
from natscron_api.live_state import LiveState
from natscron_api.requests import MAX_BULK_CANCEL
from natscron_api.views import BulkCancelResult
from natscron_shared.contract import names
from natscron_shared.contract.enums import JobStatus
from natscron_shared.contract.storage import Document
from natscron_shared.nats import schedule_bucket
from natscron_shared.runtime.mongo import jobs

NOT_FINAL = [status.value for status in JobStatus if not status.is_terminal]


class JobCancels:
    def __init__(self, commands: Commands, live: LiveState, db: AsyncDatabase[Document]) -> None:
        self._commands = commands
        self._live = live
        self._db = db

    async def cancel(
        self, ids: Sequence[str] | None, selector: str | None, reason: str | None, by: str
    ) -> BulkCancelResult:
        """The jobs of `ids` (duplicates once), or those `selector` picks, in id order."""
        chosen = (
            await self._selected(selector)
            if selector is not None
            else list(dict.fromkeys(ids or ()))
        )
        results = await self._commands.cancel_many(chosen, reason, by)
        cancelled = sum(1 for result in results if result.outcome in ("running", "queued"))
        return BulkCancelResult(results=results, cancelled=cancelled)

    async def _selected(self, selector: str) -> list[str]:
        bucket = await self._live.bucket(names.KV_SCHEDULED_JOBS)
        schedules = set(
            await schedule_bucket.select(bucket, schedule_bucket.parse_selector(selector))
        )
        if not schedules:
            return []
        running = {
            claim.job_id
            for claim in await self._live.running_jobs()
            if claim.scheduled_job_id in schedules
        }
        query = {"scheduled_job_id": {"$in": sorted(schedules)}, "status": {"$in": NOT_FINAL}}
        found = jobs(self._db).find(query, {"_id": 0, "job_id": 1}).limit(MAX_BULK_CANCEL + 1)
        chosen = running | {doc["job_id"] async for doc in found}
        if len(chosen) > MAX_BULK_CANCEL:
            raise ApiError(
                "too_many_jobs",
                f"selector {selector!r} picks more than {MAX_BULK_CANCEL} jobs that are not"
                " final; narrow it, or cancel by ids (at most that many a request)",
            )
        return sorted(chosen)
