"""A MongoDB source: seed 000's `scheduled_jobs` and the legacy templates of its `jobs`
collection are the schedules, every other `jobs` document a run. What was migrated is
marked in the source (`migrated_to_natscron`), so a marked run is never looked at again."""

from collections.abc import AsyncIterator, Mapping
from datetime import datetime

from pymongo.asynchronous.database import AsyncDatabase

from natscron.migration.definitions import (
    LEGACY_COLLECTION,
    MARKER,
    SCHEDULED_JOBS_COLLECTION,
    legacy_definition,
    scheduled_job_definition,
)
from natscron.migration.records import Definition, Run
from natscron.migration.runs import run_record
from natscron_shared.contract.storage import Document

LAYOUT = "mongodb"
TEMPLATES: Mapping[str, object] = {"cron_expression": {"$ne": None}}
OTHERS: Mapping[str, object] = {"cron_expression": None}
"""Matches a missing field too: every document that is not a template."""


class MongoSource:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._db = db

    @property
    def layout(self) -> str:
        return LAYOUT

    @property
    def database(self) -> str:
        return self._db.name

    async def definitions(self) -> AsyncIterator[Definition]:
        """`scheduled_jobs` first: a template seed 000 moved there is superseded by it."""
        async for document in self._db[SCHEDULED_JOBS_COLLECTION].find({}).sort("_id", 1):
            yield scheduled_job_definition(document)
        async for document in self._db[LEGACY_COLLECTION].find(TEMPLATES).sort("_id", 1):
            yield legacy_definition(document)

    async def runs(self) -> AsyncIterator[Run]:
        newer = await self._schedule_keys()
        async for document in self._db[LEGACY_COLLECTION].find(OTHERS).sort("_id", 1):
            yield run_record(document, newer)

    async def _schedule_keys(self) -> set[str]:
        """What runs of the newer layout reference: a `scheduled_jobs` id or `_id`."""
        keys: set[str] = set()
        fields = {"_id": 1, "scheduled_job_id": 1}
        async for document in self._db[SCHEDULED_JOBS_COLLECTION].find({}, fields):
            keys.add(str(document["_id"]))
            if isinstance(document.get("scheduled_job_id"), str):
                keys.add(document["scheduled_job_id"])
        return keys

    async def mark_definition(
        self, definition: Definition, scheduled_job_id: str, now: datetime
    ) -> None:
        marker = definition.marker
        if isinstance(marker, dict) and marker.get("scheduled_job_id") == scheduled_job_id:
            return
        collection = definition.origin.source.partition(":")[2]
        await self._db[collection].update_one(
            {"_id": definition.handle},
            {"$set": {MARKER: {"at": now, "scheduled_job_id": scheduled_job_id}}},
        )

    async def mark_run(self, run: Run, job_id: str, scheduled_job_id: str, now: datetime) -> None:
        marker = {"at": now, "job_id": job_id, "scheduled_job_id": scheduled_job_id}
        await self._db[LEGACY_COLLECTION].update_one(
            {"_id": run.handle}, {"$set": {MARKER: marker}}
        )
