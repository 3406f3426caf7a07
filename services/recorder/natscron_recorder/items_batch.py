"""Recording a batch of ITEMS messages.

Items are upserted by key outside any transaction: each write is guarded (a redelivered
older batch cannot overwrite newer data), so repeating it is harmless. Then one
transaction counts each item batch once on its job (`saved_batches`, `properties_saved`)
and in the statistics; a crash between the two steps only repeats the first.
"""

from collections import defaultdict
from dataclasses import dataclass

from pymongo import AsyncMongoClient, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from natscron_recorder.guarded import guarded_bulk_upsert
from natscron_recorder.stats import StatsBatch
from natscron_shared.contract.messages import ItemBatch
from natscron_shared.contract.storage import ITEMS, JOB_STATS, JOBS, Document
from natscron_shared.runtime.mongo_transaction import in_transaction


@dataclass(frozen=True)
class ItemsRecorded:
    items_written: int
    batches_counted: int


def item_writes(batches: list[ItemBatch]) -> list[tuple[Document, Document]]:
    """One guarded upsert per key: the newest sighting's data, the first sighting kept."""
    newest: dict[str, tuple[ItemBatch, int]] = {}
    first: dict[str, ItemBatch] = {}
    for batch in batches:
        for index, item in enumerate(batch.items):
            if item.key not in newest or batch.scraped_at > newest[item.key][0].scraped_at:
                newest[item.key] = (batch, index)
            if item.key not in first or batch.scraped_at < first[item.key].scraped_at:
                first[item.key] = batch
    writes: list[tuple[Document, Document]] = []
    for key, (batch, index) in newest.items():
        seen, earliest = batch.scraped_at, first[key]
        writes.append(
            (
                {"key": key, "last_seen_at": {"$not": {"$gt": seen}}},
                {
                    "$set": {
                        "data": batch.items[index].data,
                        "scheduled_job_id": batch.scheduled_job_id,
                        "last_job_id": batch.job_id,
                        "last_seen_at": seen,
                    },
                    "$setOnInsert": {
                        "first_seen_at": earliest.scraped_at,
                        "first_job_id": earliest.job_id,
                    },
                },
            )
        )
    return writes


class ItemBatchWriter:
    def __init__(self, client: AsyncMongoClient[Document], db: AsyncDatabase[Document]) -> None:
        self._client = client
        self._db = db

    async def record(self, batches: list[ItemBatch]) -> ItemsRecorded:
        writes = item_writes(batches)
        await guarded_bulk_upsert(self._db[ITEMS], writes)
        unique = list({(b.job_id, b.batch): b for b in batches}.values())

        async def work(session: AsyncClientSession) -> int:
            return await self._count(session, unique)

        counted = await in_transaction(self._client, work)
        return ItemsRecorded(items_written=len(writes), batches_counted=counted)

    async def _count(self, session: AsyncClientSession, batches: list[ItemBatch]) -> int:
        job_ids = sorted({batch.job_id for batch in batches})
        saved = {
            doc["job_id"]: set(doc.get("saved_batches", []))
            async for doc in self._db[JOBS].find(
                {"job_id": {"$in": job_ids}},
                {"_id": 0, "job_id": 1, "saved_batches": 1},
                session=session,
            )
        }
        new: dict[str, list[ItemBatch]] = defaultdict(list)
        for batch in batches:
            if batch.batch not in saved.get(batch.job_id, set()):
                new[batch.job_id].append(batch)
        if not new:
            return 0
        stats = StatsBatch()
        updates = []
        for job_id, job_batches in new.items():
            updates.append(
                UpdateOne(
                    {"job_id": job_id},
                    {
                        "$push": {"saved_batches": {"$each": [b.batch for b in job_batches]}},
                        "$inc": {"properties_saved": sum(len(b.items) for b in job_batches)},
                        "$setOnInsert": {"scheduled_job_id": job_batches[0].scheduled_job_id},
                    },
                    upsert=True,
                )
            )
            for batch in job_batches:
                stats.add_items_saved(batch.scheduled_job_id, batch.scraped_at, len(batch.items))
        await self._db[JOBS].bulk_write(updates, ordered=False, session=session)
        await self._db[JOB_STATS].bulk_write(stats.updates(), ordered=False, session=session)
        return sum(len(job_batches) for job_batches in new.values())
