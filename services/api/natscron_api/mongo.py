"""Read-only MongoDB access. The recorder owns the documents (docs/architecture.md,
section 5); the API reads them, in the database named by the URL's path."""

from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

DEFAULT_DATABASE = "natscron"
SCHEDULED_JOBS = "scheduled_jobs"
JOBS = "jobs"
JOB_STATS = "job_stats"

Document = dict[str, Any]


def new_client(url: str) -> AsyncMongoClient[Document]:
    return AsyncMongoClient(
        url, tz_aware=True, serverSelectionTimeoutMS=5_000, appname="natscron-api"
    )


def database_of(client: AsyncMongoClient[Document]) -> AsyncDatabase[Document]:
    return client.get_default_database(default=DEFAULT_DATABASE)
