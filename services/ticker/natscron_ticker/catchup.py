"""Which slots to fire when a scheduled job's turn comes: a pure function.

The ticker normally wakes at each slot and fires it. After downtime, a takeover or
a slow loop, several slots may lie in `(handled_until, now]`; `catchup` decides:

- `all`: every one of them, oldest first (at most `MAX_CATCHUP_RUNS`, the newest);
- `latest`: only the newest, however late (missed runs coalesce into one);
- `none`: only the newest, and only if it is at most `misfire_grace_seconds` late.

`max_runs` then keeps as many as the job has runs left, oldest first (the order they came
in); the rest are skipped.

What is left unfired is the plan's `skip`: the slots merged into the run `latest` fired, or
dropped, all of them newer than `handled_until` and up to a slot it names, which the ticker
records as a decision (`natscron_shared.contract.decisions`).

The usual case, one slot due, is found with two forward searches (`next_fire_after`), the
second of which is the job's next slot, needed anyway; only when more than one slot is due
does the newest-first search run.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice

from natscron_shared.contract.decisions import DecisionKind
from natscron_shared.contract.enums import Catchup
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.timing.schedule import SlotSpec, next_fire_after, slots_newest_first

MAX_CATCHUP_RUNS = 100
MAX_COUNTED_SLOTS = 100_000
"""Skipped slots are counted up to this many, so a year-long outage costs no more."""


@dataclass(frozen=True, slots=True)
class Skip:
    """Missed slots left unfired: those in `(handled_until, until]` without a run of their
    own (counted up to `MAX_COUNTED_SLOTS`), merged into the run of slot `into` or dropped."""

    kind: DecisionKind
    until: datetime
    slots: int
    into: datetime | None = None


@dataclass(frozen=True)
class FiringPlan:
    fire: tuple[datetime, ...]
    """Slots to publish now, oldest first."""
    next_slot: datetime | None
    """The first slot after `now`, whatever `max_runs` leaves (None: the schedule ends)."""
    skip: Skip | None = None
    """What catch-up left unfired, if anything."""
    over_max_runs: int = 0
    """Due slots `max_runs` left unfired: the newest, after the last run it allows."""

    @property
    def skipped(self) -> int:
        """Slots in the window left unfired (each kind counted up to `MAX_COUNTED_SLOTS`)."""
        return (0 if self.skip is None else self.skip.slots) + self.over_max_runs


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
        return FiringPlan(fire=(), next_slot=first)
    following = next_fire_after(slots, first)
    if runs_left == 0:
        return FiringPlan(fire=(), next_slot=following)
    if following is None or following > now:
        too_late = now - first > timedelta(seconds=spec.misfire_grace_seconds)
        if spec.catchup is Catchup.NONE and too_late:
            dropped = Skip(DecisionKind.CATCHUP_DROPPED, first, 1)
            return FiringPlan(fire=(), next_slot=following, skip=dropped)
        return FiringPlan(fire=(first,), next_slot=following)
    fire, skip = _by_policy(spec, slots, handled_until, now)
    over = 0
    if runs_left is not None and len(fire) > runs_left:
        over = len(fire) - runs_left
        fire = fire[:runs_left]
    return FiringPlan(fire, next_fire_after(slots, now), skip, over)


def _by_policy(
    spec: ScheduledJob, slot_spec: SlotSpec, handled_until: datetime, now: datetime
) -> tuple[tuple[datetime, ...], Skip | None]:
    """The slots to fire, oldest first, and what is skipped, ignoring `max_runs`."""
    slots = slots_newest_first(slot_spec, handled_until, now)
    if spec.catchup is Catchup.ALL:
        fire = tuple(reversed(list(islice(slots, MAX_CATCHUP_RUNS))))
        return fire, _skipped(DecisionKind.CATCHUP_DROPPED, slots)
    newest = next(slots, None)
    if newest is None:
        return (), None
    too_late = now - newest > timedelta(seconds=spec.misfire_grace_seconds)
    if spec.catchup is Catchup.NONE and too_late:
        dropped = _skipped(DecisionKind.CATCHUP_DROPPED, slots)
        return (), Skip(DecisionKind.CATCHUP_DROPPED, newest, 1 + (dropped.slots if dropped else 0))
    if spec.catchup is Catchup.LATEST:
        return (newest,), _skipped(DecisionKind.CATCHUP_MERGED, slots, newest)
    return (newest,), _skipped(DecisionKind.CATCHUP_DROPPED, slots)


def _skipped(
    kind: DecisionKind, older: Iterator[datetime], into: datetime | None = None
) -> Skip | None:
    """The slots left in `older` (newest first), skipped as `kind`."""
    newest = next(older, None)
    if newest is None:
        return None
    return Skip(kind, newest, 1 + sum(1 for _ in islice(older, MAX_COUNTED_SLOTS - 1)), into)
