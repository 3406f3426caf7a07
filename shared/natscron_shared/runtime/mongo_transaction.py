"""One MongoDB transaction per batch: all of its writes become durable together or not at all.

The recorder records each batch of messages in one; `natscron migrate` counts each
schedule's migrated runs in one. A conflict with a concurrent writer (another recorder, the
other consumer loop, the schedule mirror, a migration) aborts the transaction, which is
then run again from its reads after a random, growing pause, so writers that collided do
not collide again in lockstep (every finished run also updates the system-wide statistics
documents, which all writers share). A duplicate key is one such conflict (two writers
inserting the same new document), alone or as every error of a bulk write.
Any other error, such as an unreachable server, is the caller's: the batch is kept and
retried as a whole.
"""

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure

from natscron_shared.contract.storage import Document
from natscron_shared.runtime.mongo import DURABLE

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_CONFLICT_RETRIES = 30
FIRST_BACKOFF_SECONDS = 0.005
MAX_BACKOFF_SECONDS = 0.5
TRANSIENT_LABEL = "TransientTransactionError"
DUPLICATE_KEY = 11000


def is_conflict(exc: OperationFailure) -> bool:
    if isinstance(exc, DuplicateKeyError) or exc.has_error_label(TRANSIENT_LABEL):
        return True
    if isinstance(exc, BulkWriteError):
        errors = exc.details.get("writeErrors", [])
        return bool(errors) and all(error.get("code") == DUPLICATE_KEY for error in errors)
    return False


class TooManyConflictsError(Exception):
    """Still conflicting after every retry; the caller keeps its batch and tries later."""


async def in_transaction(
    client: AsyncMongoClient[Document], work: Callable[[AsyncClientSession], Awaitable[T]]
) -> T:
    """Run `work` in a transaction committed with the durable write concern."""
    for attempt in range(1, MAX_CONFLICT_RETRIES + 1):
        async with client.start_session() as session:
            try:
                async with await session.start_transaction(write_concern=DURABLE):
                    return await work(session)
            except OperationFailure as exc:
                if not is_conflict(exc):
                    raise
                log.debug("transaction conflict (attempt %d): %s", attempt, exc)
            backoff = min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * 2**attempt)
            await asyncio.sleep(random.uniform(0, backoff))
    raise TooManyConflictsError(f"gave up after {MAX_CONFLICT_RETRIES} write conflicts")
