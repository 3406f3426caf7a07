"""Statistics deltas of one batch, folded per `job_stats` document, written as one
upsert each: `$inc` for counters and the duration sketch, `$min`/`$max` for durations."""

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from pymongo import UpdateOne

from natscron_shared.contract.job_stats import (
    ADHOC_SCOPE,
    ALL_TIME,
    SYSTEM_SCOPE,
    duration_field,
    hour_period,
    stats_id,
)
from natscron_shared.contract.messages import JobEvent


@dataclass
class _Delta:
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


class StatsBatch:
    def __init__(self) -> None:
        self._deltas: dict[str, _Delta] = {}

    def __len__(self) -> int:
        return len(self._deltas)

    def add_final(self, event: JobEvent) -> None:
        """A job that just became final (finished, or skipped without running)."""
        finished_at = event.completed_at or event.at
        for delta in self._deltas_of(event.job.scheduled_job_id, finished_at):
            delta.inc[event.status.value] += 1
            if event.status.is_finished_run:
                delta.inc["runs"] += 1
            if event.duration_ms is not None:
                delta.duration(event.duration_ms)
            delta.inc["items_scraped"] += event.properties_scraped or 0

    def add_items_saved(self, scheduled_job_id: str | None, at: datetime, count: int) -> None:
        for delta in self._deltas_of(scheduled_job_id, at):
            delta.inc["items_saved"] += count

    def updates(self) -> list[UpdateOne]:
        return [self._update(key, delta) for key, delta in self._deltas.items()]

    def _deltas_of(self, scheduled_job_id: str | None, at: datetime) -> list[_Delta]:
        scope = scheduled_job_id or ADHOC_SCOPE
        return [
            self._delta(s, p) for s in (scope, SYSTEM_SCOPE) for p in (ALL_TIME, hour_period(at))
        ]

    def _delta(self, scope: str, period: str) -> _Delta:
        key = stats_id(scope, period)
        if key not in self._deltas:
            self._deltas[key] = _Delta(scope, period)
        return self._deltas[key]

    @staticmethod
    def _update(key: str, delta: _Delta) -> UpdateOne:
        update: dict[str, dict[str, object]] = {
            "$inc": {name: value for name, value in delta.inc.items() if value},
            "$setOnInsert": {"scope": delta.scope, "period": delta.period},
        }
        if delta.min_ms is not None:
            update["$min"] = {"duration_ms_min": delta.min_ms}
            update["$max"] = {"duration_ms_max": delta.max_ms}
        return UpdateOne({"_id": key}, update, upsert=True)
