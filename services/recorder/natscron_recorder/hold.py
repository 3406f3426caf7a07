"""Holding a job's events until it ends, so that a short job is written once.

A job's `pending` and `running` events are kept, not acked, until its final event arrives
(the job is then written once, in its final state, and all its events acked after that
write) or until `hold_seconds` have passed since the first of them (the job is then written
as it stands, and updated when it ends). A held message is not acked, so a recorder killed
while holding it gets it delivered again. With `hold_seconds` 0 nothing is held.

The hold is measured in the stream's time while events come (the newest event's `at`
against the job's first held event's), and in the recorder's own time only when a fetch
brings nothing at all (a batch of schedule events only is not idle): a recorder behind the
stream would otherwise let every job go before reaching its final event, a few batches
further on, and write it twice.

At most `MAX_HELD` events are held (the oldest jobs go first beyond it): held events count
against the consumer's unacked messages (`MAX_ACK_PENDING`), and a consumer that reaches
them delivers nothing more, not even the final events the hold waits for.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from nats.aio.msg import Msg

from natscron_shared.contract.messages import JobEvent
from natscron_shared.nats.jetstream_layout import MAX_ACK_PENDING


@dataclass
class HeldJob:
    since: datetime
    """When the recorder first held one of its events."""
    first_at: datetime
    """The `at` of the first of its events held."""
    events: dict[int, tuple[Msg, JobEvent]] = field(default_factory=dict)
    """By the message's identity: a batch tried again adds nothing twice."""


MAX_HELD = MAX_ACK_PENDING // 2
"""Half the consumer's unacked messages: the rest for the batch in hand and the schedule
events waiting for their flush."""


class EventHold:
    def __init__(self, hold_seconds: float) -> None:
        self._hold = timedelta(seconds=hold_seconds)
        self._jobs: dict[str, HeldJob] = {}
        self._stream_now: datetime | None = None
        """The newest event's `at` seen."""

    def __len__(self) -> int:
        return sum(len(job.events) for job in self._jobs.values())

    def take(
        self, events: list[tuple[Msg, JobEvent]], now: datetime, *, idle: bool
    ) -> list[tuple[Msg, JobEvent]]:
        """Adds a batch's job events; returns those to write now: every event of a job that
        has a final one, and those of jobs held for `hold_seconds` (`idle`: the fetch brought
        nothing, so the recorder's own time counts)."""
        self.put_back(events, now)
        if events:
            newest = max(event.at for _, event in events)
            self._stream_now = max(newest, self._stream_now or newest)
        due = [
            job_id
            for job_id, held in self._jobs.items()
            if any(event.status.is_terminal for _, event in held.events.values())
            or self._expired(held, now, idle)
        ]
        taken = [pair for job_id in due for pair in self._jobs.pop(job_id).events.values()]
        excess = len(self) - MAX_HELD
        for job_id in sorted(self._jobs, key=lambda j: self._jobs[j].first_at):
            if excess <= 0:
                break
            events_of_job = list(self._jobs.pop(job_id).events.values())
            excess -= len(events_of_job)
            taken += events_of_job
        return taken

    def _expired(self, held: HeldJob, now: datetime, idle: bool) -> bool:
        if idle:
            return now - held.since >= self._hold
        assert self._stream_now is not None
        return self._stream_now - held.first_at >= self._hold

    def put_back(self, events: list[tuple[Msg, JobEvent]], now: datetime) -> None:
        """Holds events (again: those taken for a write that failed)."""
        for msg, event in events:
            held = self._jobs.setdefault(event.job.job_id, HeldJob(now, event.at))
            held.first_at = min(held.first_at, event.at)
            held.events[id(msg)] = (msg, event)
