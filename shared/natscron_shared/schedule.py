"""When a scheduled job fires: pure functions of the spec and a moment.

A spec has one set of slots: those of its cron expression (`cron_engine`, with its DST rules),
its interval (multiples of the period since the Unix epoch, so every ticker computes the same
ones) or its one `run_at`, minus those outside its active hours (`active_windows`). The forward
and the newest-first searches walk that same set, so the slot announced as next is the one that
fires, and catch-up finds exactly the slots a ticker that never stopped would have fired.
"""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Protocol

from natscron_shared.active_windows import ActiveWindow
from natscron_shared.cron_engine import cron_engine
from natscron_shared.models import ScheduledJob
from natscron_shared.zones import timeline_of

_EPOCH = datetime(1970, 1, 1)
_TICK = timedelta(microseconds=1)
# How far the search for a slot inside the active hours goes before it gives up: slots that
# never fall inside the window (an interval of a day in a window between its slots) would
# otherwise be looked for forever. The calendar repeats every 400 years.
_HORIZON = timedelta(days=401 * 366)


class _Slots(Protocol):
    """A set of instants (naive UTC), searched either way."""

    def next_slot(self, after: datetime) -> datetime | None: ...

    def previous_slot(self, before: datetime) -> datetime | None: ...


class _Interval:
    def __init__(self, minutes: float) -> None:
        self._period = timedelta(minutes=minutes)

    def next_slot(self, after: datetime) -> datetime | None:
        return _EPOCH + ((after - _EPOCH) // self._period + 1) * self._period

    def previous_slot(self, before: datetime) -> datetime | None:
        return _EPOCH + ((before - _TICK - _EPOCH) // self._period) * self._period


class _Once:
    def __init__(self, at: datetime) -> None:
        self._at = at

    def next_slot(self, after: datetime) -> datetime | None:
        return self._at if self._at > after else None

    def previous_slot(self, before: datetime) -> datetime | None:
        return self._at if self._at < before else None


def _slots_of(spec: ScheduledJob) -> _Slots:
    if spec.cron_expression is not None:
        return cron_engine(spec.cron_expression, spec.timezone)
    if spec.interval_minutes is not None:
        return _Interval(spec.interval_minutes)
    assert spec.run_at is not None
    return _Once(_naive_utc(spec.run_at))


def _window_of(spec: ScheduledJob) -> ActiveWindow | None:
    if spec.active_hours is None:
        return None
    return ActiveWindow(spec.active_hours, timeline_of(spec.timezone))


def next_fire_after(spec: ScheduledJob, after: datetime) -> datetime | None:
    """The first slot strictly after `after` inside the active hours, or None if none is left."""
    slots, window = _slots_of(spec), _window_of(spec)
    start = _naive_utc(after)
    slot = slots.next_slot(start)
    if window is not None:
        while slot is not None and not window.contains(slot):
            if slot - start > _HORIZON:
                return None
            slot = slots.next_slot(window.next_open(slot) - _TICK)
    return None if slot is None else slot.replace(tzinfo=UTC)


def slots_between(spec: ScheduledJob, after: datetime, until: datetime) -> Iterator[datetime]:
    """Slots in (after, until], oldest first."""
    slot = next_fire_after(spec, after)
    while slot is not None and slot <= until:
        yield slot
        slot = next_fire_after(spec, slot)


def slots_newest_first(spec: ScheduledJob, after: datetime, until: datetime) -> Iterator[datetime]:
    """Slots in (after, until], newest first: finds recent missed slots without
    walking forward through a long outage."""
    slots, window = _slots_of(spec), _window_of(spec)
    floor = _naive_utc(after)
    slot = slots.previous_slot(_naive_utc(until) + _TICK)
    while slot is not None and slot > floor:
        if window is None or window.contains(slot):
            yield slot.replace(tzinfo=UTC)
            slot = slots.previous_slot(slot)
        else:
            slot = slots.previous_slot(window.last_open(slot) + _TICK)


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)
