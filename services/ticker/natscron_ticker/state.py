"""KV `ticker_state`: how far each scheduled job's slots have been handled.

Every ticker follows it (`StateMirror`), so a new leader catches up from where the last
one stopped, and never fires a slot at or before `handled_until` again. The scheduler
saves many jobs at once (one put each, pipelined on the connection) and never one job
twice at once, so puts of one key cannot overtake each other.

A state is a named tuple, not a pydantic model: a ticker holds one per scheduled job, a
million of them; a model costs five times the memory, and the cyclic garbage collector
would walk every one of them (a tuple of plain values it soon leaves alone).
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import NamedTuple

from nats.js.kv import KeyValue
from pydantic import AwareDatetime, BaseModel

from natscron_shared.contract import names
from natscron_ticker.bulk_publish import BulkPublisher, Prepared


class SlotState(NamedTuple):
    handled_until: datetime
    """Every slot at or before this moment has been fired or deliberately skipped."""
    last_fired_slot: datetime | None = None
    active: bool = True
    """False while the job is paused or inactive: a resumed job starts afresh, without
    catching up the slots of its pause."""
    fired_runs: int = 0
    """Scheduled runs fired (acked) while counting against `max_runs`."""
    max_runs: int | None = None
    """The spec's `max_runs` that `fired_runs` counts against: a spec applied with another
    one starts a fresh count."""

    @classmethod
    def from_json(cls, value: bytes | str) -> "SlotState":
        """Raises `pydantic.ValidationError` for a value that is not a state. Moments come
        back in `UTC` itself: pydantic gives each its own offset object, 40 bytes more."""
        saved = _Saved.model_validate_json(value)
        last = saved.last_fired_slot
        return SlotState(
            saved.handled_until.astimezone(UTC),
            None if last is None else last.astimezone(UTC),
            saved.active,
            saved.fired_runs,
            saved.max_runs,
        )

    def to_json(self) -> bytes:
        return _Saved(**self._asdict()).model_dump_json().encode()

    def paused_or_resumed(self, now: datetime, active: bool) -> "SlotState":
        """The state of a job paused or resumed at `now`: nothing of the pause is owed."""
        return self._replace(handled_until=now, active=active)


class _Saved(BaseModel):
    """A state as KV holds it, only to read and write one."""

    handled_until: AwareDatetime
    last_fired_slot: AwareDatetime | None = None
    active: bool = True
    fired_runs: int = 0
    max_runs: int | None = None


StateRow = tuple[datetime, datetime | None, bool, int, int | None]


class StateTable:
    """Every job's `SlotState` by id, kept as plain tuples: the cyclic garbage collector
    stops walking a tuple of plain values after one look, while it would walk a million
    `SlotState`s (a tuple subclass) at every full collection, 0.5-0.8 s each time, long
    enough to lose the lease."""

    def __init__(self) -> None:
        self._rows: dict[str, StateRow] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def get(self, scheduled_job_id: str) -> SlotState | None:
        row = self._rows.get(scheduled_job_id)
        return None if row is None else SlotState._make(row)

    def __getitem__(self, scheduled_job_id: str) -> SlotState:
        return SlotState._make(self._rows[scheduled_job_id])

    def __setitem__(self, scheduled_job_id: str, state: SlotState) -> None:
        handled_until, last_fired_slot, active, fired_runs, max_runs = state
        self._rows[scheduled_job_id] = (
            handled_until,
            last_fired_slot,
            active,
            fired_runs,
            max_runs,
        )

    def pop(self, scheduled_job_id: str) -> SlotState | None:
        row = self._rows.pop(scheduled_job_id, None)
        return None if row is None else SlotState._make(row)


class TickerStateStore:
    def __init__(self, bucket: KeyValue, bulk: BulkPublisher) -> None:
        self._bucket = bucket
        self._bulk = bulk

    async def save(self, scheduled_job_id: str, state: SlotState) -> None:
        await self._bucket.put(scheduled_job_id, state.to_json())

    async def save_all(self, states: Sequence[tuple[str, SlotState]]) -> int:
        """Put many states pipelined (a KV put is a publish on `$KV.<bucket>.<key>`); how
        many failed."""
        outcomes = await self._bulk.publish_all(
            [
                Prepared(f"$KV.{names.KV_TICKER_STATE}.{key}", state.to_json())
                for key, state in states
            ]
        )
        return sum(1 for outcome in outcomes if isinstance(outcome, BaseException))

    async def forget(self, scheduled_job_id: str) -> None:
        await self._bucket.delete(scheduled_job_id)
