"""When a scheduled job fires: pure functions of the spec and a moment.

A spec has one set of slots, built in three steps:

1. Its nominal instants: those of its cron expression (`cron_engine`, with its DST rules), its
   interval (multiples of the period since `start_at`, or since the Unix epoch without one, so
   every ticker computes the same ones) or its one `run_at`; none for a spec that only runs
   after other schedules (a chain's child).
2. Kept are those inside `[start_at, end_at]` and inside its active hours (`active_hours`).
3. Each kept instant is delayed by its jitter (`jitter_offset`), a function of the job's id and
   the nominal instant only, so every ticker, and a failover, fires the same instant.

The slot is the delayed instant: it is what `next_run_at` announces, what the ticker waits for,
the run's `scheduled_for`, and what its deterministic job id is made of. A delay is drawn from
`[0, min(jitter_seconds, time to the next nominal instant, time to end_at))`: it never carries
a slot past the next one, so jittered slots keep their order (a cron whose slots come closer
than `jitter_seconds`, say across a DST change, gets a smaller delay there), and none fires
after `end_at`. Bounds and active hours apply to the nominal instant.

The forward and the newest-first searches walk that same set, so the slot announced as next is
the one that fires, and catch-up finds exactly the slots a ticker that never stopped would have
fired.

An interval whose periods count from a moment known only as it runs (the end of its previous
run, `natscron_shared.contract.last_runs`) gets its slots from `counted_from`: the same set,
with that moment as its start.
"""

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from natscron_shared.timing.active_hours import ActiveHours, ActiveWindow
from natscron_shared.timing.cron_engine import cron_engine
from natscron_shared.timing.zones import timeline_of

_EPOCH = datetime(1970, 1, 1)
_TICK = timedelta(microseconds=1)
# How far the search for a slot inside the active hours goes before it gives up: slots that
# never fall inside the window (an interval of a day in a window between its slots) would
# otherwise be looked for forever. The calendar repeats every 400 years.
_HORIZON = timedelta(days=401 * 366)


class SlotSpec(Protocol):
    """What the slot maths read of a spec: `natscron_shared.contract.models.ScheduledJob`
    is one. Timing knows no contract, so the contract can validate with it."""

    @property
    def scheduled_job_id(self) -> str: ...
    @property
    def cron_expression(self) -> str | None: ...
    @property
    def interval_period(self) -> timedelta | None: ...
    @property
    def run_at(self) -> datetime | None: ...
    @property
    def timezone(self) -> str: ...
    @property
    def active_hours(self) -> ActiveHours | None: ...
    @property
    def start_at(self) -> datetime | None: ...
    @property
    def end_at(self) -> datetime | None: ...
    @property
    def jitter_seconds(self) -> float: ...


@dataclass(frozen=True, slots=True)
class _CountedFrom:
    """An interval spec whose `start_at` is another moment (`counted_from`)."""

    scheduled_job_id: str
    interval_period: timedelta
    timezone: str
    active_hours: ActiveHours | None
    start_at: datetime
    end_at: datetime | None
    jitter_seconds: float
    cron_expression: None = None
    run_at: None = None


def counted_from(spec: SlotSpec, start: datetime) -> SlotSpec:
    """The slots of `spec`, an interval, as if it counted its periods from `start`: the first
    at `start`, then one per period; `end_at`, active hours and jitter as the spec has them."""
    period = spec.interval_period
    if period is None:
        raise ValueError(f"{spec.scheduled_job_id}: only an interval counts from a moment")
    return _CountedFrom(
        scheduled_job_id=spec.scheduled_job_id,
        interval_period=period,
        timezone=spec.timezone,
        active_hours=spec.active_hours,
        start_at=start,
        end_at=spec.end_at,
        jitter_seconds=spec.jitter_seconds,
    )


def first_active(spec: SlotSpec, moment: datetime) -> datetime:
    """The first instant at or after `moment` inside the spec's active hours (`moment` itself
    without any)."""
    if spec.active_hours is None:
        return moment
    window = ActiveWindow(spec.active_hours, timeline_of(spec.timezone))
    return window.next_open(_naive_utc(moment)).replace(tzinfo=UTC)


class _Slots(Protocol):
    """A set of instants (naive UTC), searched either way."""

    def next_slot(self, after: datetime) -> datetime | None: ...

    def previous_slot(self, before: datetime) -> datetime | None: ...


class _Interval:
    def __init__(self, period: timedelta, anchor: datetime) -> None:
        self._period = period
        self._anchor = anchor

    def next_slot(self, after: datetime) -> datetime | None:
        return self._anchor + ((after - self._anchor) // self._period + 1) * self._period

    def previous_slot(self, before: datetime) -> datetime | None:
        return self._anchor + ((before - _TICK - self._anchor) // self._period) * self._period


class _Once:
    def __init__(self, at: datetime) -> None:
        self._at = at

    def next_slot(self, after: datetime) -> datetime | None:
        return self._at if self._at > after else None

    def previous_slot(self, before: datetime) -> datetime | None:
        return self._at if self._at < before else None


class _Never:
    """A schedule that only runs after others (a chain's child without a cron)."""

    def next_slot(self, after: datetime) -> datetime | None:
        return None

    def previous_slot(self, before: datetime) -> datetime | None:
        return None


def _slots_of(spec: SlotSpec) -> _Slots:
    if spec.cron_expression is not None:
        return cron_engine(spec.cron_expression, spec.timezone)
    period = spec.interval_period
    if period is not None:
        anchor = _EPOCH if spec.start_at is None else _naive_utc(spec.start_at)
        return _Interval(period, anchor)
    if spec.run_at is None:
        return _Never()
    return _Once(_naive_utc(spec.run_at))


def jitter_offset(scheduled_job_id: str, nominal: datetime, limit: timedelta) -> timedelta:
    """The delay of one nominal slot (naive UTC), in `[0, limit)`: a stable hash (BLAKE2b,
    not the per-process salted `hash()`) of the job's id and the slot, scaled to the limit
    in whole microseconds, so every process computes the same one."""
    key = f"{scheduled_job_id}|{(nominal - _EPOCH) // _TICK}".encode()
    fraction = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest())
    return _TICK * ((fraction * (limit // _TICK)) >> 64)


class SlotSet:
    """One spec's slots (naive UTC): its nominal instants (`raw`), kept by the bounds and the
    active hours, then jittered. `slot_fates` reads its parts to say why an instant is not a
    slot."""

    def __init__(self, spec: SlotSpec) -> None:
        self._id = spec.scheduled_job_id
        self.raw = _slots_of(spec)
        self.start = None if spec.start_at is None else _naive_utc(spec.start_at)
        self.end = None if spec.end_at is None else _naive_utc(spec.end_at)
        self.window = (
            None
            if spec.active_hours is None
            else ActiveWindow(spec.active_hours, timeline_of(spec.timezone))
        )
        self.jitter = timedelta(seconds=spec.jitter_seconds)
        """Every slot lies less than this after its nominal instant."""

    def fired_at(self, nominal: datetime) -> datetime:
        """When the kept nominal instant fires."""
        if not self.jitter:
            return nominal
        limit = self.jitter
        following = self.raw.next_slot(nominal)
        if following is not None:
            limit = min(limit, following - nominal)
        if self.end is not None:
            limit = min(limit, self.end - nominal)
        return nominal + jitter_offset(self._id, nominal, limit)

    def next_nominal(self, after: datetime) -> datetime | None:
        """The first kept nominal instant strictly after `after`."""
        if self.start is not None and after < self.start:
            after = self.start - _TICK
        slot = self._next_in_bounds(after)
        if self.window is not None:
            while slot is not None and not self.window.contains(slot):
                if slot - after > _HORIZON:
                    return None
                slot = self._next_in_bounds(self.window.next_open(slot) - _TICK)
        return slot

    def nominal_newest_first(self, floor: datetime, until: datetime) -> Iterator[datetime]:
        """The kept nominal instants in `(floor, until]`, newest first."""
        if self.start is not None:
            floor = max(floor, self.start - _TICK)
        if self.end is not None:
            until = min(until, self.end)
        slot = self.raw.previous_slot(until + _TICK)
        while slot is not None and slot > floor:
            if self.window is None or self.window.contains(slot):
                yield slot
                slot = self.raw.previous_slot(slot)
            else:
                slot = self.raw.previous_slot(self.window.last_open(slot) + _TICK)

    def _next_in_bounds(self, after: datetime) -> datetime | None:
        slot = self.raw.next_slot(after)
        return None if slot is None or (self.end is not None and slot > self.end) else slot


def next_fire_after(
    spec: SlotSpec, after: datetime, *, runs_left: int | None = None
) -> datetime | None:
    """The first slot strictly after `after`, or None if none is left: past `end_at`, or
    `runs_left` (what `max_runs` leaves, None: no limit) is 0."""
    if runs_left == 0:
        return None
    slots = SlotSet(spec)
    start = _naive_utc(after)
    if slots.jitter:
        # A nominal instant at or before `after` may fire after it; only the newest can.
        late = next(slots.nominal_newest_first(start - slots.jitter, start), None)
        if late is not None and (fired := slots.fired_at(late)) > start:
            return fired.replace(tzinfo=UTC)
    nominal = slots.next_nominal(start)
    return None if nominal is None else slots.fired_at(nominal).replace(tzinfo=UTC)


def slots_between(spec: SlotSpec, after: datetime, until: datetime) -> Iterator[datetime]:
    """Slots in (after, until], oldest first."""
    slot = next_fire_after(spec, after)
    while slot is not None and slot <= until:
        yield slot
        slot = next_fire_after(spec, slot)


def slots_newest_first(spec: SlotSpec, after: datetime, until: datetime) -> Iterator[datetime]:
    """Slots in (after, until], newest first: finds recent missed slots without
    walking forward through a long outage."""
    slots = SlotSet(spec)
    floor, top = _naive_utc(after), _naive_utc(until)
    for nominal in slots.nominal_newest_first(floor - slots.jitter, top):
        fired = slots.fired_at(nominal)
        if fired <= floor:
            return  # slots keep their order: every older one fired earlier still
        if fired <= top:
            yield fired.replace(tzinfo=UTC)


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)
