"""MongoDB access: the database is the one named in the URL's path."""

from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.write_concern import WriteConcern

DEFAULT_DATABASE = "natscron"
SCHEDULED_JOBS = "scheduled_jobs"
JOBS = "jobs"
ITEMS = "items"
JOB_STATS = "job_stats"
DURABLE = WriteConcern(w="majority", j=True)
"""Acknowledged means journaled: a write the recorder acks a message for survives a
SIGKILL of the server right after (the default lost ~40 ms of writes on SecantusDB, which
also needs `--sync-on-commit` to honour it for transactions: see natscron.embedded)."""

Document = dict[str, Any]


def new_client(url: str) -> AsyncMongoClient[Document]:
    return AsyncMongoClient(url, tz_aware=True, serverSelectionTimeoutMS=5_000)


def database_of(client: AsyncMongoClient[Document]) -> AsyncDatabase[Document]:
    return client.get_default_database(default=DEFAULT_DATABASE, write_concern=DURABLE)
