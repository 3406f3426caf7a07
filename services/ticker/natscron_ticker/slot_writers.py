"""What the scheduler writes through, as Protocols: the service gives it `JobPublisher`
(JetStream) and `TickerStateStore` (KV `ticker_state`); tests give it in-memory fakes that
implement the same calls without inheriting from either (tests/ticker/ticker_fakes.py)."""

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from natscron_shared.contract.decisions import Decision
from natscron_shared.contract.messages import RunRequest, ScheduleEvent
from natscron_shared.contract.ticker_state import SlotState
from natscron_ticker.bulk_publish import Framed, Outcome


class SlotPublisher(Protocol):
    """Publishes the runs of due slots, their `pending` events, next-run announcements and
    decision records."""

    def frame_runs(self, requests: Sequence[RunRequest]) -> Framed:
        """The run requests encoded for the wire, ahead of their sending."""
        ...

    async def publish_framed(self, framed: Framed, check: Callable[[], None]) -> list[Outcome]:
        """Send framed run requests; each one's outcome, in order. `check` runs before the
        sends, and what it raises is the error of every one of them, nothing sent."""
        ...

    async def publish_pending(self, requests: Sequence[RunRequest]) -> int:
        """The `pending` events of acked run requests; how many failed."""
        ...

    async def announce_all(self, events: Sequence[ScheduleEvent]) -> int:
        """Next-run announcements; how many failed."""
        ...

    async def publish_decisions(self, decisions: Sequence[Decision]) -> int:
        """Decision records (why slots did not fire as scheduled); how many failed."""
        ...

    async def publish_next_run(
        self,
        scheduled_job_id: str,
        next_run_at: datetime | None,
        at: datetime,
        remaining_runs: int | None = None,
    ) -> None:
        """One next-run announcement; raises if it failed."""
        ...


class SlotStateStore(Protocol):
    """Keeps how far each scheduled job's slots have been handled."""

    async def save(self, scheduled_job_id: str, state: SlotState) -> None: ...

    async def save_all(self, states: Sequence[tuple[str, SlotState]]) -> int:
        """Save many states at once; how many failed."""
        ...

    async def forget(self, scheduled_job_id: str) -> None: ...
