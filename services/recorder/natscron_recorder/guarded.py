"""Upserts that only ever replace an older document: idempotent and order-independent.

The filter names the document's unique key plus a condition that only an older
stored document meets. No match means either there is no document (the upsert
inserts one) or the stored one is already as new (the insert then fails on the
unique index with DuplicateKeyError). A concurrent writer may have inserted the
document in between, so after DuplicateKeyError the update is retried without
upsert: only a miss there means "already as new".

The "older" condition is written as `{field: {"$not": {"$gte": value}}}`, which also
matches a document without the field, rather than as an `$or`: SecantusDB answers a
filter with a top-level `$or` by scanning the whole collection, not the key's index.
"""

from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, DuplicateKeyError

from natscron_shared.contract.storage import Document

DUPLICATE_KEY = 11000


class WriteRaceError(Exception):
    """Documents kept changing under a conditional write: the batch is tried again later."""


async def guarded_upsert(
    collection: AsyncCollection[Document], query: Document, update: Document
) -> bool:
    """True if the update was applied, False if the stored document was already as new."""
    try:
        await collection.update_one(query, update, upsert=True)
    except DuplicateKeyError:
        result = await collection.update_one(query, update)
        return result.matched_count > 0
    return True


async def guarded_bulk_upsert(
    collection: AsyncCollection[Document], writes: list[tuple[Document, Document]]
) -> None:
    """`guarded_upsert` for many documents in one round trip; stale writes are dropped."""
    if not writes:
        return
    try:
        await collection.bulk_write(
            [UpdateOne(query, update, upsert=True) for query, update in writes], ordered=False
        )
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if exc.details.get("writeConcernErrors") or any(
            error["code"] != DUPLICATE_KEY for error in errors
        ):
            raise
        retries = [UpdateOne(*writes[error["index"]]) for error in errors]
        await collection.bulk_write(retries, ordered=False)
