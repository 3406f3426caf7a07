"""The open flushes of the recorders, in `recorder_flushes`.

A flush is opened (a small document) before the first job that it counts is written, and
deleted once its rollup is applied. Its recorder refreshes `alive_at` while it is open; a
flush not refreshed for `STALE_SECONDS` belonged to a recorder that died (or lost MongoDB
for that long), and any recorder counts it again from its jobs: bounded by the jobs of
that flush, whatever the history. A live recorder applies a flush within a few seconds of
closing it to new jobs, and its MongoDB operations time out well within `STALE_SECONDS`.
"""

import itertools
import uuid
from datetime import datetime, timedelta

from pymongo.asynchronous.database import AsyncDatabase

from natscron_recorder.rollup import Rollup
from natscron_shared.contract.storage import JOBS, RECORDER_FLUSHES, Document

STALE_SECONDS = 30.0
FINAL_FIELDS = {
    "_id": 0,
    "job_id": 1,
    "scheduled_job_id": 1,
    "status": 1,
    "finished_at": 1,
    "duration_ms": 1,
    "properties_scraped": 1,
}


class FlushLog:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._db = db
        self.owner = uuid.uuid4().hex[:12]
        self._numbers = itertools.count(1)
        self._writes = 0

    def take_writes(self) -> int:
        """The documents written since the last call."""
        writes, self._writes = self._writes, 0
        return writes

    def new_id(self) -> str:
        return f"{self.owner}-{next(self._numbers)}"

    async def open(self, flush_id: str, now: datetime) -> None:
        self._writes += 1
        await self._db[RECORDER_FLUSHES].update_one(
            {"_id": flush_id},
            {"$set": {"alive_at": now}, "$setOnInsert": {"owner": self.owner, "opened_at": now}},
            upsert=True,
        )

    async def keep_alive(self, now: datetime) -> None:
        result = await self._db[RECORDER_FLUSHES].update_many(
            {"owner": self.owner}, {"$set": {"alive_at": now}}
        )
        self._writes += result.modified_count

    async def close(self, flush_id: str) -> None:
        self._writes += 1
        await self._db[RECORDER_FLUSHES].delete_one({"_id": flush_id})

    async def stale(self, now: datetime) -> list[str]:
        cutoff = now - timedelta(seconds=STALE_SECONDS)
        return [
            doc["_id"]
            async for doc in self._db[RECORDER_FLUSHES].find(
                {"alive_at": {"$lt": cutoff}, "owner": {"$ne": self.owner}}, {"_id": 1}
            )
        ]

    async def recount(self, flush_id: str) -> Rollup:
        """The rollup of a flush, from the jobs it counts."""
        docs = await self._db[JOBS].find({"count_flush": flush_id}, FINAL_FIELDS).to_list()
        return Rollup.from_jobs(flush_id, docs)
