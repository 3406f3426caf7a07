"""Which slots to fire when a scheduled job's turn comes: a pure function.

The ticker normally wakes at each slot and fires it. After downtime, a takeover or
a slow loop, several slots may lie in `(handled_until, now]`; `catchup` decides:

- `all`: every one of them, oldest first (at most `MAX_CATCHUP_RUNS`, the newest);
- `latest`: only the newest, however late (missed runs coalesce into one);
- `none`: only the newest, and only if it is at most `misfire_grace_seconds` late.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice

from natscron_shared.enums import Catchup
from natscron_shared.models import ScheduledJob
from natscron_shared.schedule import slots_newest_first

MAX_CATCHUP_RUNS = 100
MAX_COUNTED_SLOTS = 100_000
"""Skipped slots are counted up to this many, so a year-long outage costs no more."""


@dataclass(frozen=True)
class FiringPlan:
    fire: tuple[datetime, ...]
    """Slots to publish now, oldest first."""
    skipped: int
    """Slots in the window left unfired (counted up to `MAX_COUNTED_SLOTS`)."""


def plan_firing(spec: ScheduledJob, handled_until: datetime, now: datetime) -> FiringPlan:
    """The slots in `(handled_until, now]` to fire for `spec`, per its catchup policy."""
    slots = slots_newest_first(spec, handled_until, now)
    if spec.catchup is Catchup.ALL:
        fire = list(islice(slots, MAX_CATCHUP_RUNS))
        return FiringPlan(fire=tuple(reversed(fire)), skipped=_count(slots))
    newest = next(slots, None)
    if newest is None:
        return FiringPlan(fire=(), skipped=0)
    too_late = now - newest > timedelta(seconds=spec.misfire_grace_seconds)
    if spec.catchup is Catchup.NONE and too_late:
        return FiringPlan(fire=(), skipped=1 + _count(slots))
    return FiringPlan(fire=(newest,), skipped=_count(slots))


def _count(slots: Iterator[datetime]) -> int:
    return sum(1 for _ in islice(slots, MAX_COUNTED_SLOTS))
