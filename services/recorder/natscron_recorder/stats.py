"""Statistics deltas (`natscron_shared.contract.stats_delta`) as the upserts of `job_stats`
the recorder writes: each guarded by the id of the flush (or item batch) that adds it, kept
in the document's bounded `applied_flushes`, so applying it again changes nothing."""

from datetime import datetime

from pymongo import UpdateOne

from natscron_shared.contract.enums import JobStatus
from natscron_shared.contract.stats_delta import StatsDeltas
from natscron_shared.contract.storage import Document

APPLIED_KEPT = 200
"""Flush ids a document remembers: far more than the flushes that can still be applied
again (the owner's retries, a recount of a flush whose recorder died)."""


def applied(flush_id: str) -> Document:
    """The `$push` recording a flush as applied."""
    return {"applied_flushes": {"$each": [flush_id], "$slice": -APPLIED_KEPT}}


class StatsBatch:
    def __init__(self) -> None:
        self._deltas = StatsDeltas()

    def __len__(self) -> int:
        return len(self._deltas)

    def add_final(
        self,
        scheduled_job_id: str | None,
        status: JobStatus,
        finished_at: datetime,
        duration_ms: int | None,
        items_scraped: int | None,
    ) -> None:
        """A job that just became final (finished, or skipped without running)."""
        self._deltas.add_final(scheduled_job_id, status, finished_at, duration_ms, items_scraped)

    def add_items_saved(self, scheduled_job_id: str | None, at: datetime, count: int) -> None:
        self._deltas.add_items_saved(scheduled_job_id, at, count)

    def updates(self) -> list[UpdateOne]:
        """Unguarded upserts, for a transaction that counts its changes once by itself."""
        return [
            UpdateOne({"_id": key}, update, upsert=True)
            for key, update in self._deltas.updates().items()
        ]

    def guarded_writes(self, flush_id: str) -> list[tuple[Document, Document]]:
        """(filter, update) of each document touched, for `guarded_bulk_upsert`."""
        return [
            (
                {"_id": key, "applied_flushes": {"$ne": flush_id}},
                {**update, "$push": applied(flush_id)},
            )
            for key, update in self._deltas.updates().items()
        ]
