"""Holding a job's events until it ends, so that a short job is written once.

A job's `pending` and `running` events are kept, not acked, until its final event arrives
(the job is then written once, in its final state, and all its events acked after that
write) or until `hold_seconds` have passed since the first of them (the job is then written
as it stands, and updated when it ends). A held message is not acked, so a recorder killed
while holding it gets it delivered again. With `hold_seconds` 0 nothing is held.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from nats.aio.msg import Msg

from natscron_shared.contract.messages import JobEvent


@dataclass
class HeldJob:
    since: datetime
    events: dict[int, tuple[Msg, JobEvent]] = field(default_factory=dict)
    """By the message's identity: a batch tried again adds nothing twice."""


class EventHold:
    def __init__(self, hold_seconds: float) -> None:
        self._hold = timedelta(seconds=hold_seconds)
        self._jobs: dict[str, HeldJob] = {}

    def __len__(self) -> int:
        return sum(len(job.events) for job in self._jobs.values())

    def take(self, events: list[tuple[Msg, JobEvent]], now: datetime) -> list[tuple[Msg, JobEvent]]:
        """Adds a batch's job events; returns those to write now: every event of a job that
        has a final one, and those of jobs held for `hold_seconds`."""
        self.put_back(events, now)
        due = [
            job_id
            for job_id, held in self._jobs.items()
            if now - held.since >= self._hold
            or any(event.status.is_terminal for _, event in held.events.values())
        ]
        return [pair for job_id in due for pair in self._jobs.pop(job_id).events.values()]

    def put_back(self, events: list[tuple[Msg, JobEvent]], now: datetime) -> None:
        """Holds events (again: those taken for a write that failed)."""
        for msg, event in events:
            held = self._jobs.setdefault(event.job.job_id, HeldJob(now))
            held.events[id(msg)] = (msg, event)
