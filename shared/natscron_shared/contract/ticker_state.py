"""KV `ticker_state`: how far the ticker has handled each scheduled job's slots.

The leading ticker writes one value per scheduled job, keyed by its id; every ticker
follows the bucket, so a new leader goes on from where the last one stopped, and the API
reads it for what `max_runs` still allows.

A state is a named tuple, not a pydantic model: a ticker holds one per scheduled job, a
million of them; a model costs five times the memory, and the cyclic garbage collector
would walk every one of them (a tuple of plain values it soon leaves alone).
"""

from datetime import UTC, datetime
from typing import NamedTuple

from pydantic import AwareDatetime, BaseModel

from natscron_shared.contract.models import ScheduledJob


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


def fired_runs(spec: ScheduledJob, state: SlotState) -> int:
    """The scheduled runs fired against the spec's current `max_runs`."""
    return state.fired_runs if state.max_runs == spec.max_runs else 0


def runs_left(spec: ScheduledJob, state: SlotState | None) -> int | None:
    """How many scheduled runs `spec` may still fire; None without `max_runs`. Without a
    state (a job the ticker has not handled yet), all of them."""
    if spec.max_runs is None:
        return None
    if state is None:
        return spec.max_runs
    return max(0, spec.max_runs - fired_runs(spec, state))
