"""The leader's heap of next fire times, one live entry per scheduled job."""

import heapq
from datetime import datetime


class Agenda:
    """Rescheduling pushes a new entry; superseded ones are dropped when they surface."""

    def __init__(self) -> None:
        self._heap: list[tuple[datetime, str]] = []
        self._due: dict[str, datetime] = {}

    def __len__(self) -> int:
        return len(self._due)

    def set(self, scheduled_job_id: str, when: datetime | None) -> None:
        if when is None:
            self._due.pop(scheduled_job_id, None)
            return
        self._due[scheduled_job_id] = when
        heapq.heappush(self._heap, (when, scheduled_job_id))

    def next_time(self) -> datetime | None:
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: datetime) -> list[str]:
        """The ids whose time has come, removed from the agenda."""
        due: list[str] = []
        while (when := self.next_time()) is not None and when <= now:
            _, scheduled_job_id = heapq.heappop(self._heap)
            del self._due[scheduled_job_id]
            due.append(scheduled_job_id)
        return due

    def _drop_stale(self) -> None:
        while self._heap and self._due.get(self._heap[0][1]) != self._heap[0][0]:
            heapq.heappop(self._heap)
