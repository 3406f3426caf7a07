"""KV `ticker_state`: how far each scheduled job's slots have been handled.

A new leader reads it to catch up from where the last one stopped, and never
fires a slot at or before `handled_until` again. The scheduler saves many jobs at once
(one put each, pipelined on the connection) and never one job twice at once, so puts
of one key cannot overtake each other.
"""

import logging

from nats.js.kv import KeyValue
from pydantic import AwareDatetime, BaseModel, ValidationError

from natscron_shared.nats_conn import to_json

log = logging.getLogger(__name__)


class SlotState(BaseModel):
    handled_until: AwareDatetime
    """Every slot at or before this moment has been fired or deliberately skipped."""
    last_fired_slot: AwareDatetime | None = None
    active: bool = True
    """False while the job is paused or inactive: a resumed job starts afresh, without
    catching up the slots of its pause."""


class TickerStateStore:
    def __init__(self, bucket: KeyValue) -> None:
        self._bucket = bucket

    async def load_all(self) -> dict[str, SlotState]:
        watcher = await self._bucket.watchall(ignore_deletes=True)
        states: dict[str, SlotState] = {}
        try:
            async for entry in watcher:
                if entry is None:
                    break
                try:
                    states[entry.key] = SlotState.model_validate_json(entry.value or b"")
                except ValidationError:
                    log.warning("ignoring an unreadable ticker_state entry %r", entry.key)
        finally:
            await watcher.stop()  # type: ignore[no-untyped-call]
        return states

    async def save(self, scheduled_job_id: str, state: SlotState) -> None:
        await self._bucket.put(scheduled_job_id, to_json(state))

    async def forget(self, scheduled_job_id: str) -> None:
        await self._bucket.delete(scheduled_job_id)
