"""Which slots to fire when a scheduled job's turn comes: a pure function.

The ticker normally wakes at each slot and fires it. After downtime, a takeover or
a slow loop, several slots may lie in `(handled_until, now]`; `catchup` decides:

- `all`: every one of them, oldest first (at most `MAX_CATCHUP_RUNS`, the newest);
- `latest`: only the newest, however late (missed runs coalesce into one);
- `none`: only the newest, and only if it is at most `misfire_grace_seconds` late.

`max_runs` then keeps as many as the job has runs left, oldest first (the order they came
in); the rest are skipped.

The usual case, one slot due, is found with two forward searches (`next_fire_after`), the
second of which is the job's next slot, needed anyway; only when more than one slot is due
does the newest-first search run.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice

from natscron_shared.contract.enums import Catchup
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.timing.schedule import SlotSpec, next_fire_after, slots_newest_first

MAX_CATCHUP_RUNS = 100
MAX_COUNTED_SLOTS = 100_000
"""Skipped slots are counted up to this many, so a year-long outage costs no more."""


@dataclass(frozen=True)
class FiringPlan:
    fire: tuple[datetime, ...]
    """Slots to publish now, oldest first."""
    skipped: int
    """Slots in the window left unfired (counted up to `MAX_COUNTED_SLOTS`)."""
    next_slot: datetime | None
    """The first slot after `now`, whatever `max_runs` leaves (None: the schedule ends)."""


def plan_firing(
    spec: ScheduledJob,
    handled_until: datetime,
    now: datetime,
    runs_left: int | None = None,
    slots: SlotSpec | None = None,
) -> FiringPlan:
    """The slots in `(handled_until, now]` to fire for `spec`, per its catchup policy and
    the `runs_left` of its `max_runs` (None: no limit). `slots`: what its slots are, when
    not the spec's own (an interval `from: last_run`, `natscron_shared.contract.last_runs`)."""
    if slots is None:
        slots = spec
    first = next_fire_after(slots, handled_until)
    if first is None or first > now:
        return FiringPlan(fire=(), skipped=0, next_slot=first)
    following = next_fire_after(slots, first)
    if runs_left == 0:
        return FiringPlan(fire=(), skipped=0, next_slot=following)
    if following is None or following > now:
        too_late = now - first > timedelta(seconds=spec.misfire_grace_seconds)
        if spec.catchup is Catchup.NONE and too_late:
            return FiringPlan(fire=(), skipped=1, next_slot=following)
        return FiringPlan(fire=(first,), skipped=0, next_slot=following)
    fire, skipped = _by_policy(spec, slots, handled_until, now)
    if runs_left is not None and len(fire) > runs_left:
        skipped += len(fire) - runs_left
        fire = fire[:runs_left]
    return FiringPlan(fire=fire, skipped=skipped, next_slot=next_fire_after(slots, now))


def _by_policy(
    spec: ScheduledJob, slot_spec: SlotSpec, handled_until: datetime, now: datetime
) -> tuple[tuple[datetime, ...], int]:
    """The slots to fire, oldest first, and how many are skipped, ignoring `max_runs`."""
    slots = slots_newest_first(slot_spec, handled_until, now)
    if spec.catchup is Catchup.ALL:
        fire = list(islice(slots, MAX_CATCHUP_RUNS))
        return tuple(reversed(fire)), _count(slots)
    newest = next(slots, None)
    if newest is None:
        return (), 0
    too_late = now - newest > timedelta(seconds=spec.misfire_grace_seconds)
    if spec.catchup is Catchup.NONE and too_late:
        return (), 1 + _count(slots)
    return (newest,), _count(slots)


def _count(slots: Iterator[datetime]) -> int:
    return sum(1 for _ in islice(slots, MAX_COUNTED_SLOTS))
