"""Counting a schedule's migrated runs in its run history (`run_count`, `last_run_*`,
`consecutive_failures`) and in `job_stats`, each run once.

The runs natscron has counted are those in `migrated_runs`; the rest of a schedule's
migrated `jobs` documents are counted oldest first, in chunks, each in one transaction with
its `migrated_runs` entries: a migration stopped half way leaves every run counted or not,
and the next one counts what is left. The history and statistics updates are the
recorder's own (`natscron_shared.contract.run_history`, `...contract.stats_delta`), so a
migrated run counts as the recorder would have counted it.
"""

from dataclasses import dataclass
from datetime import datetime
from functools import partial

from pymongo import AsyncMongoClient, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from natscron_shared.contract.enums import JobStatus
from natscron_shared.contract.run_history import HISTORY_FIELDS, FailuresAfter, FinishedRun, advance
from natscron_shared.contract.stats_delta import StatsDeltas
from natscron_shared.contract.storage import Document, JobDocument, MigratedRunDocument
from natscron_shared.runtime.mongo import job_stats, jobs, migrated_runs, scheduled_jobs
from natscron_shared.runtime.mongo_transaction import in_transaction

CHUNK_RUNS = 500
"""Runs counted per transaction: a schedule's years of history in bounded transactions."""
RUN_FIELDS = {
    "_id": 0,
    "job_id": 1,
    "status": 1,
    "created_at": 1,
    "started_at": 1,
    "completed_at": 1,
    "duration_ms": 1,
    "properties_scraped": 1,
    "properties_saved": 1,
}


def finished_at(run: JobDocument) -> datetime:
    """When the run ended, as the recorder dates a final run: its completion, else the
    latest moment the source kept."""
    return run.get("completed_at") or run.get("started_at") or run["created_at"]


@dataclass(frozen=True)
class HistoryStep:
    client: AsyncMongoClient[Document]
    db: AsyncDatabase[Document]
    dry_run: bool
    now: datetime

    async def count(self, scheduled_job_id: str, linked: int = 0) -> int:
        """Counts the schedule's migrated runs not counted yet; how many it counted (in a
        dry run, how many it would: those stored uncounted and the `linked` to come)."""
        stored = [
            run
            async for run in jobs(self.db).find(
                {"scheduled_job_id": scheduled_job_id, "migrated_from": {"$exists": True}},
                RUN_FIELDS,
            )
        ]
        counted = await self._counted([run["job_id"] for run in stored])
        pending = sorted((r for r in stored if r["job_id"] not in counted), key=finished_at)
        if self.dry_run:
            return len(pending) + linked
        total = 0
        for start in range(0, len(pending), CHUNK_RUNS):
            work = partial(
                self._count_chunk,
                scheduled_job_id=scheduled_job_id,
                chunk=pending[start : start + CHUNK_RUNS],
                later=pending[start + CHUNK_RUNS :],
            )
            total += await in_transaction(self.client, work)
        return total

    async def _counted(
        self, job_ids: list[str], session: AsyncClientSession | None = None
    ) -> set[str]:
        if not job_ids:
            return set()
        cursor = migrated_runs(self.db).find({"_id": {"$in": job_ids}}, {"_id": 1}, session=session)
        return {entry["_id"] async for entry in cursor}

    async def _count_chunk(
        self,
        session: AsyncClientSession,
        scheduled_job_id: str,
        chunk: list[JobDocument],
        later: list[JobDocument],
    ) -> int:
        """Reads again inside the transaction: a concurrent migration may have counted some."""
        counted = await self._counted([run["job_id"] for run in chunk], session)
        runs = [run for run in chunk if run["job_id"] not in counted]
        if not runs:
            return 0
        history_fields = {"_id": 0, **dict.fromkeys(HISTORY_FIELDS, 1)}
        known = await scheduled_jobs(self.db).find_one(
            {"scheduled_job_id": scheduled_job_id}, history_fields, session=session
        )
        finished = [
            FinishedRun(
                run["job_id"], JobStatus(run["status"]), finished_at(run), run.get("duration_ms")
            )
            for run in runs
        ]
        history = await advance(
            dict(known or {}), finished, self._failures_after(session, scheduled_job_id, later)
        )
        await scheduled_jobs(self.db).update_one(
            {"scheduled_job_id": scheduled_job_id}, {"$set": history}, upsert=True, session=session
        )
        await job_stats(self.db).bulk_write(
            [
                UpdateOne({"_id": key}, update, upsert=True)
                for key, update in _stats(scheduled_job_id, runs).items()
            ],
            ordered=False,
            session=session,
        )
        entries: list[MigratedRunDocument] = [
            {"_id": run["job_id"], "scheduled_job_id": scheduled_job_id, "counted_at": self.now}
            for run in runs
        ]
        await migrated_runs(self.db).insert_many(entries, session=session)
        return len(runs)

    def _failures_after(
        self, session: AsyncClientSession, scheduled_job_id: str, later: list[JobDocument]
    ) -> FailuresAfter:
        """The stored failures after a moment, as the recorder counts them, but for the
        migrated runs of later chunks: stored already, they are not counted yet."""

        async def failures_after(after: datetime) -> int:
            stored = await jobs(self.db).count_documents(
                {
                    "scheduled_job_id": scheduled_job_id,
                    "status": JobStatus.FAILED.value,
                    "completed_at": {"$gt": after},
                },
                session=session,
            )
            uncounted = sum(
                1
                for run in later
                if run["status"] == JobStatus.FAILED.value
                and (completed := run.get("completed_at")) is not None
                and completed > after
            )
            return stored - uncounted

        return failures_after


def _stats(scheduled_job_id: str, runs: list[JobDocument]) -> dict[str, Document]:
    deltas = StatsDeltas()
    for run in runs:
        at = finished_at(run)
        deltas.add_final(
            scheduled_job_id,
            JobStatus(run["status"]),
            at,
            run.get("duration_ms"),
            run.get("properties_scraped"),
        )
        saved = run.get("properties_saved") or 0
        if saved:
            deltas.add_items_saved(scheduled_job_id, at, saved)
    return deltas.updates()
