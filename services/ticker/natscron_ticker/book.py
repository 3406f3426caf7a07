"""The specs of KV `scheduled_jobs` as last seen, kept current by a watch.

Every ticker keeps one, leader or not, so a standby that takes over already knows
every schedule and any ticker can answer `jobs.trigger`.
"""

import asyncio

from natscron_shared.models import ScheduledJob


class ScheduleBook:
    def __init__(self) -> None:
        self._specs: dict[str, ScheduledJob] = {}
        self._changed: set[str] = set()
        self.changes = asyncio.Event()
        """Set when a spec was put or removed since the last `take_changes`."""
        self.loaded = asyncio.Event()
        """Set once the watch has delivered every spec that existed when it started."""
        self.revision = 0
        """The newest KV revision the watch delivered, valid or not (see `watchdog`)."""

    def __len__(self) -> int:
        return len(self._specs)

    def put(self, spec: ScheduledJob) -> None:
        self._specs[spec.scheduled_job_id] = spec
        self._mark(spec.scheduled_job_id)

    def remove(self, scheduled_job_id: str) -> None:
        if self._specs.pop(scheduled_job_id, None) is not None:
            self._mark(scheduled_job_id)

    def get(self, scheduled_job_id: str) -> ScheduledJob | None:
        return self._specs.get(scheduled_job_id)

    def all(self) -> list[ScheduledJob]:
        return list(self._specs.values())

    def take_changes(self) -> set[str]:
        """The ids changed since the last call."""
        changed, self._changed = self._changed, set()
        self.changes.clear()
        return changed

    def _mark(self, scheduled_job_id: str) -> None:
        self._changed.add(scheduled_job_id)
        self.changes.set()
