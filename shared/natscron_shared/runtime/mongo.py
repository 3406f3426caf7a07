"""The MongoDB client every natscron process opens the same way (install natscron-shared's
`mongo` extra: the ticker and the runner go without pymongo).

The database is the one named in the URL's path (`DEFAULT_DATABASE` if none); the
collections, documents and indexes are the contract's (`natscron_shared.contract.storage`).
"""

from typing import Any, cast

from pymongo import AsyncMongoClient, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.write_concern import WriteConcern

from natscron_shared.contract.storage import (
    DECISIONS,
    DEFAULT_DATABASE,
    INDEXES,
    ITEMS,
    JOB_STATS,
    JOBS,
    MIGRATED_RUNS,
    SCHEDULED_JOBS,
    DecisionDocument,
    Document,
    Index,
    ItemDocument,
    JobDocument,
    JobStatsDocument,
    MigratedRunDocument,
    ScheduledJobDocument,
)

SERVER_SELECTION_TIMEOUT_MS = 5_000
DURABLE = WriteConcern(w="majority", j=True)
"""Acknowledged means journaled: a write the recorder acks a message for survives a
SIGKILL of the server right after (the default lost ~40 ms of writes on SecantusDB, which
also needs `--sync-on-commit` to honour it for transactions: see natscron.embedded).
Writers only: a write concern changes nothing for reads."""


def new_client(url: str, appname: str | None = None) -> AsyncMongoClient[Document]:
    """Times come back aware (UTC); `appname` shows in the server's logs and `currentOp`."""
    options: dict[str, Any] = {
        "tz_aware": True,
        "serverSelectionTimeoutMS": SERVER_SELECTION_TIMEOUT_MS,
    }
    if appname is not None:
        options["appname"] = appname
    return AsyncMongoClient(url, **options)


def database_of(client: AsyncMongoClient[Document]) -> AsyncDatabase[Document]:
    """The database named in the URL's path, whose writes are `DURABLE`."""
    return client.get_default_database(default=DEFAULT_DATABASE, write_concern=DURABLE)


async def ensure_indexes(db: AsyncDatabase[Document]) -> None:
    """Idempotent: creating an index that exists with the same spec changes nothing."""
    for collection, indexes in INDEXES.items():
        await db[collection].create_indexes([_model(index) for index in indexes])


def _model(index: Index) -> IndexModel:
    """`unique` only where it is true, as the indexes have always been created."""
    return IndexModel(list(index.keys), **({"unique": True} if index.unique else {}))


# The collections, typed: the driver hands out plain dicts, which is what the contract's
# TypedDicts declare, so reading through these makes a misspelt field a type error.


def scheduled_jobs(db: AsyncDatabase[Any]) -> AsyncCollection[ScheduledJobDocument]:
    return cast(AsyncCollection[ScheduledJobDocument], db[SCHEDULED_JOBS])


def jobs(db: AsyncDatabase[Any]) -> AsyncCollection[JobDocument]:
    return cast(AsyncCollection[JobDocument], db[JOBS])


def job_stats(db: AsyncDatabase[Any]) -> AsyncCollection[JobStatsDocument]:
    return cast(AsyncCollection[JobStatsDocument], db[JOB_STATS])


def items(db: AsyncDatabase[Any]) -> AsyncCollection[ItemDocument]:
    return cast(AsyncCollection[ItemDocument], db[ITEMS])


def migrated_runs(db: AsyncDatabase[Any]) -> AsyncCollection[MigratedRunDocument]:
    return cast(AsyncCollection[MigratedRunDocument], db[MIGRATED_RUNS])


def decisions(db: AsyncDatabase[Any]) -> AsyncCollection[DecisionDocument]:
    return cast(AsyncCollection[DecisionDocument], db[DECISIONS])
