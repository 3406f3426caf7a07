"""KV `ticker_state`: how far each scheduled job's slots have been handled.

Every ticker follows it (`StateMirror`), so a new leader catches up from where the last
one stopped, and never fires a slot at or before `handled_until` again. The scheduler
saves many jobs at once (one put each, pipelined on the connection) and never one job
twice at once, so puts of one key cannot overtake each other.
"""

from collections.abc import Sequence

from nats.js.kv import KeyValue
from pydantic import AwareDatetime, BaseModel

from natscron_shared import names
from natscron_shared.bulk_publish import BulkPublisher, Prepared
from natscron_shared.nats_conn import to_json


class SlotState(BaseModel):
    handled_until: AwareDatetime
    """Every slot at or before this moment has been fired or deliberately skipped."""
    last_fired_slot: AwareDatetime | None = None
    active: bool = True
    """False while the job is paused or inactive: a resumed job starts afresh, without
    catching up the slots of its pause."""
    fired_runs: int = 0
    """Scheduled runs fired (acked) while counting against `max_runs`."""
    max_runs: int | None = None
    """The spec's `max_runs` that `fired_runs` counts against: a spec applied with another
    one starts a fresh count."""


class TickerStateStore:
    def __init__(self, bucket: KeyValue, bulk: BulkPublisher) -> None:
        self._bucket = bucket
        self._bulk = bulk

    async def save(self, scheduled_job_id: str, state: SlotState) -> None:
        await self._bucket.put(scheduled_job_id, to_json(state))

    async def save_all(self, states: Sequence[tuple[str, SlotState]]) -> int:
        """Put many states pipelined (a KV put is a publish on `$KV.<bucket>.<key>`); how
        many failed."""
        outcomes = await self._bulk.publish_all(
            [
                Prepared(f"$KV.{names.KV_TICKER_STATE}.{key}", to_json(state))
                for key, state in states
            ]
        )
        return sum(1 for outcome in outcomes if isinstance(outcome, BaseException))

    async def forget(self, scheduled_job_id: str) -> None:
        await self._bucket.delete(scheduled_job_id)
