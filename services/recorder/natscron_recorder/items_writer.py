"""Scraped items upserted by key into `items`, and each batch counted once on its job."""

from pymongo.asynchronous.database import AsyncDatabase

from natscron_recorder.guarded import guarded_bulk_upsert, guarded_upsert
from natscron_recorder.mongo import ITEMS, JOBS, Document
from natscron_shared.messages import ItemBatch


def item_writes(batch: ItemBatch) -> list[tuple[Document, Document]]:
    """One guarded upsert per item: a redelivered older batch cannot overwrite newer data."""
    seen = batch.scraped_at
    return [
        (
            {"key": item.key, "last_seen_at": {"$not": {"$gt": seen}}},
            {
                "$set": {
                    "data": item.data,
                    "scheduled_job_id": batch.scheduled_job_id,
                    "last_job_id": batch.job_id,
                    "last_seen_at": seen,
                },
                "$setOnInsert": {"first_seen_at": seen, "first_job_id": batch.job_id},
            },
        )
        for item in batch.items
    ]


async def write_item_batch(db: AsyncDatabase[Document], batch: ItemBatch) -> bool:
    """Store the items, then count the batch on its job unless it was counted before.

    True if the batch was counted now, False if a delivery before had counted it. The
    job document may not exist yet (items can overtake the job's first event).
    """
    await guarded_bulk_upsert(db[ITEMS], item_writes(batch))
    count = {
        "$push": {"saved_batches": batch.batch},
        "$inc": {"properties_saved": len(batch.items)},
        "$setOnInsert": {"scheduled_job_id": batch.scheduled_job_id},
    }
    query = {"job_id": batch.job_id, "saved_batches": {"$ne": batch.batch}}
    return await guarded_upsert(db[JOBS], query, count)
