"""What final runs and saved items add to the `job_stats` documents, as plain data.

Each final run counts in four documents: its scope (the scheduled job, or `ADHOC_SCOPE`)
and `SYSTEM_SCOPE`, each for `ALL_TIME` and the UTC hour it finished in. The deltas are
folded per document, so a batch writes one upsert per document it touches: `$inc` for
counters and the duration sketch, `$min`/`$max` for durations. The recorder applies them for
the runs it records (each flush's upserts guarded by the flush's id), `natscron migrate`
for the runs it brings over (in the transaction that marks them counted): each run once.
"""

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from natscron_shared.contract.enums import JobStatus
from natscron_shared.contract.job_stats import (
    ADHOC_SCOPE,
    ALL_TIME,
    SYSTEM_SCOPE,
    duration_field,
    hour_period,
    stats_id,
)
from natscron_shared.contract.storage import Document


@dataclass
class StatsDelta:
    """What one batch adds to one `job_stats` document."""

    scope: str
    period: str
    inc: Counter[str] = field(default_factory=Counter)
    min_ms: int | None = None
    max_ms: int | None = None

    def duration(self, duration_ms: int) -> None:
        self.inc["duration_ms_sum"] += duration_ms
        self.inc["duration_count"] += 1
        self.inc[duration_field(duration_ms)] += 1
        self.min_ms = duration_ms if self.min_ms is None else min(self.min_ms, duration_ms)
        self.max_ms = duration_ms if self.max_ms is None else max(self.max_ms, duration_ms)

    def update(self) -> Document:
        """The MongoDB update of the document (upserted by `_id`)."""
        update: Document = {
            "$inc": {name: value for name, value in self.inc.items() if value},
            "$setOnInsert": {"scope": self.scope, "period": self.period},
        }
        if self.min_ms is not None:
            update["$min"] = {"duration_ms_min": self.min_ms}
            update["$max"] = {"duration_ms_max": self.max_ms}
        return update


class StatsDeltas:
    """The deltas of one batch, by `job_stats` `_id`."""

    def __init__(self) -> None:
        self._deltas: dict[str, StatsDelta] = {}

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
        for delta in self._deltas_of(scheduled_job_id, finished_at):
            delta.inc[status.value] += 1
            if status.is_finished_run:
                delta.inc["runs"] += 1
            if duration_ms is not None:
                delta.duration(duration_ms)
            delta.inc["items_scraped"] += items_scraped or 0

    def add_items_saved(self, scheduled_job_id: str | None, at: datetime, count: int) -> None:
        for delta in self._deltas_of(scheduled_job_id, at):
            delta.inc["items_saved"] += count

    def updates(self) -> dict[str, Document]:
        """The update of each document touched, by `_id`."""
        return {key: delta.update() for key, delta in self._deltas.items()}

    def _deltas_of(self, scheduled_job_id: str | None, at: datetime) -> list[StatsDelta]:
        scope = scheduled_job_id or ADHOC_SCOPE
        return [
            self._delta(s, p) for s in (scope, SYSTEM_SCOPE) for p in (ALL_TIME, hour_period(at))
        ]

    def _delta(self, scope: str, period: str) -> StatsDelta:
        key = stats_id(scope, period)
        if key not in self._deltas:
            self._deltas[key] = StatsDelta(scope, period)
        return self._deltas[key]
