"""In-memory stand-ins for the ticker's writers, to drive its operations and scheduler
without NATS: they keep what they were given, and every publish is acked at once. They
implement the scheduler's Protocols (`natscron_ticker.slot_writers`), as mypy checks
wherever a test hands them to the scheduler."""

from collections.abc import Callable, Sequence
from datetime import datetime

from natscron_shared.contract import names
from natscron_shared.contract.decisions import Decision
from natscron_shared.contract.messages import RunRequest, ScheduleEvent
from natscron_shared.contract.ticker_state import SlotState
from natscron_shared.nats.connection import to_json
from natscron_ticker.bulk_publish import Framed, Outcome, Stored


class RecordingPublisher:
    """Acks every run request at once and keeps what was published. Its "frames" are the
    requests' JSON bodies, which it reads back when they are sent."""

    def __init__(self) -> None:
        self.requests: list[RunRequest] = []
        self.announced: list[ScheduleEvent] = []
        self.decisions: list[Decision] = []

    def frame_runs(self, requests: Sequence[RunRequest]) -> Framed:
        return Framed([r.job_id for r in requests], [to_json(r) for r in requests])

    async def publish_framed(self, framed: Framed, check: Callable[[], None]) -> list[Outcome]:
        for frame in framed.frames:
            check()
            assert isinstance(frame, bytes)
            self.requests.append(RunRequest.model_validate_json(frame))
        return [Stored(stream=names.STREAM_JOBS, duplicate=False) for _ in framed.frames]

    async def publish_pending(self, requests: Sequence[RunRequest]) -> int:
        return 0

    async def announce_all(self, events: Sequence[ScheduleEvent]) -> int:
        self.announced.extend(events)
        return 0

    async def publish_decisions(self, decisions: Sequence[Decision]) -> int:
        self.decisions.extend(decisions)
        return 0

    async def publish_next_run(
        self,
        scheduled_job_id: str,
        next_run_at: datetime | None,
        at: datetime,
        remaining_runs: int | None = None,
    ) -> None:
        self.announced.append(
            ScheduleEvent(
                scheduled_job_id=scheduled_job_id,
                next_run_at=next_run_at,
                at=at,
                remaining_runs=remaining_runs,
            )
        )


class MemoryStore:
    def __init__(self) -> None:
        self.saved: dict[str, SlotState] = {}

    async def save(self, scheduled_job_id: str, state: SlotState) -> None:
        self.saved[scheduled_job_id] = state

    async def save_all(self, states: Sequence[tuple[str, SlotState]]) -> int:
        self.saved.update(states)
        return 0

    async def forget(self, scheduled_job_id: str) -> None:
        self.saved.pop(scheduled_job_id, None)
