"""The specs of KV `scheduled_jobs` as last seen, kept current by a watch.

Every ticker keeps one, leader or not, so a standby that takes over already knows
every schedule and any ticker can answer `jobs.trigger`.
"""

import asyncio
from datetime import datetime

from natscron_shared.models import ScheduledJob


class ScheduleBook:
    def __init__(self) -> None:
        self._specs: dict[str, ScheduledJob] = {}
        self._put_at: dict[str, datetime] = {}
        self._changed: set[str] = set()
        self.changes = asyncio.Event()
        """Set when a spec was put or removed since the last `take_changes`."""
        self.loaded = asyncio.Event()
        """Set once the watch has delivered every spec that existed when it started."""
        self.revision = 0
        """The newest KV revision the watch delivered, valid or not (see `watchdog`)."""

    def __len__(self) -> int:
        return len(self._specs)

    def put(self, spec: ScheduledJob, put_at: datetime | None = None) -> None:
        """`put_at`: when KV stored this version of the spec, if known."""
        self._specs[spec.scheduled_job_id] = spec
        if put_at is None:
            self._put_at.pop(spec.scheduled_job_id, None)
        else:
            self._put_at[spec.scheduled_job_id] = put_at
        self._mark(spec.scheduled_job_id)

    def remove(self, scheduled_job_id: str) -> None:
        self._put_at.pop(scheduled_job_id, None)
        if self._specs.pop(scheduled_job_id, None) is not None:
            self._mark(scheduled_job_id)

    def get(self, scheduled_job_id: str) -> ScheduledJob | None:
        return self._specs.get(scheduled_job_id)

    def put_at(self, scheduled_job_id: str) -> datetime | None:
        return self._put_at.get(scheduled_job_id)

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
