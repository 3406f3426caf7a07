"""The leader's heap of next fire times, one live entry per scheduled job."""

import heapq
from collections import Counter
from datetime import datetime


class Agenda:
    """Rescheduling pushes a new entry; superseded ones are dropped when they surface.

    Jobs due at the same time share one `datetime` object (`_times`): a million daily
    jobs have a few thousand distinct times between them."""

    def __init__(self) -> None:
        self._heap: list[tuple[datetime, str]] = []
        self._due: dict[str, datetime] = {}
        self._at: Counter[datetime] = Counter()
        """How many jobs are due at each time, so a big burst can be prepared early."""
        self._times: dict[datetime, datetime] = {}

    def __len__(self) -> int:
        return len(self._due)

    def set(self, scheduled_job_id: str, when: datetime | None) -> None:
        before = self._due.pop(scheduled_job_id, None)
        if before is not None:
            self._forget(before)
        if when is None:
            return
        when = self._times.setdefault(when, when)
        self._due[scheduled_job_id] = when
        self._at[when] += 1
        heapq.heappush(self._heap, (when, scheduled_job_id))

    def due(self, scheduled_job_id: str) -> datetime | None:
        """When the job is due, None: not on the agenda."""
        return self._due.get(scheduled_job_id)

    def due_at(self, when: datetime) -> int:
        """How many jobs are due at exactly `when`."""
        return self._at[when]

    def next_time(self) -> datetime | None:
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, until: datetime) -> list[tuple[str, datetime]]:
        """The ids due at or before `until`, with when each is due, earliest first,
        removed from the agenda."""
        due: list[tuple[str, datetime]] = []
        while (when := self.next_time()) is not None and when <= until:
            _, scheduled_job_id = heapq.heappop(self._heap)
            del self._due[scheduled_job_id]
            self._forget(when)
            due.append((scheduled_job_id, when))
        return due

    def _forget(self, when: datetime) -> None:
        self._at[when] -= 1
        if not self._at[when]:
            del self._at[when]
            del self._times[when]

    def _drop_stale(self) -> None:
        while self._heap and self._due.get(self._heap[0][1]) != self._heap[0][0]:
            heapq.heappop(self._heap)
