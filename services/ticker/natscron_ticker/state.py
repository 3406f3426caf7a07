"""KV `ticker_state` as the ticker keeps it: every job's `SlotState` (the contract's,
`natscron_shared.contract.ticker_state`) in memory, and the writes to the bucket.

The scheduler saves many jobs at once (one put each, pipelined on the connection) and
never one job twice at once, so puts of one key cannot overtake each other.
"""

from collections.abc import Sequence
from datetime import datetime

from nats.js.kv import KeyValue

from natscron_shared.contract import names
from natscron_shared.contract.ticker_state import SlotState
from natscron_ticker.bulk_publish import BulkPublisher, Prepared

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
