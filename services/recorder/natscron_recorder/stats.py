"""Statistics deltas of one batch (`natscron_shared.contract.stats_delta`), as the bulk
upserts of `job_stats` the recorder writes in the batch's transaction."""

from datetime import datetime

from pymongo import UpdateOne

from natscron_shared.contract.messages import JobEvent
from natscron_shared.contract.stats_delta import StatsDeltas


class StatsBatch:
    def __init__(self) -> None:
        self._deltas = StatsDeltas()

    def __len__(self) -> int:
        return len(self._deltas)

    def add_final(self, event: JobEvent) -> None:
        """A job that just became final (finished, or skipped without running)."""
        self._deltas.add_final(
            event.job.scheduled_job_id,
            event.status,
            event.completed_at or event.at,
            event.duration_ms,
            event.properties_scraped,
        )

    def add_items_saved(self, scheduled_job_id: str | None, at: datetime, count: int) -> None:
        self._deltas.add_items_saved(scheduled_job_id, at, count)

    def updates(self) -> list[UpdateOne]:
        return [
            UpdateOne({"_id": key}, update, upsert=True)
            for key, update in self._deltas.updates().items()
        ]
