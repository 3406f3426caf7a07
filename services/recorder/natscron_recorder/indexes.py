"""The indexes every recorder query and guarded upsert relies on.

The unique ones are part of correctness: a guarded upsert whose filter does not
match turns into an insert that the unique index rejects (see `guarded.py`).
SecantusDB is also slow on unindexed queries, so every queried field is indexed.
"""

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from natscron_recorder.mongo import ITEMS, JOBS, SCHEDULED_JOBS, Document

INDEXES: dict[str, list[IndexModel]] = {
    JOBS: [
        IndexModel([("job_id", ASCENDING)], unique=True),
        IndexModel([("scheduled_job_id", ASCENDING), ("created_at", DESCENDING)]),
        # The failures of a schedule after a moment (history.py), and runs by status.
        IndexModel(
            [("scheduled_job_id", ASCENDING), ("status", ASCENDING), ("completed_at", DESCENDING)]
        ),
        IndexModel([("created_at", DESCENDING)]),  # `natscron jobs` without a filter
    ],
    SCHEDULED_JOBS: [IndexModel([("scheduled_job_id", ASCENDING)], unique=True)],
    ITEMS: [IndexModel([("key", ASCENDING)], unique=True)],
}


async def ensure_indexes(db: AsyncDatabase[Document]) -> None:
    """Idempotent: creating an index that exists with the same spec changes nothing."""
    for collection, indexes in INDEXES.items():
        await db[collection].create_indexes(indexes)
