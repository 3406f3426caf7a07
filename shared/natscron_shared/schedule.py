"""When a scheduled job fires: pure functions of the spec and a moment."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from croniter import croniter

from natscron_shared.cron import has_fixed_hour, has_seconds
from natscron_shared.models import ScheduledJob

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TICK = timedelta(microseconds=1)
# Active-hours windows stepped over in one search: years of daily windows. A cron that
# never matches inside its window gives up after this many instead of looping forever.
_MAX_WINDOW_JUMPS = 2_000


def _cron_slot(spec: ScheduledJob, expression: str, start: datetime, forward: bool) -> datetime:
    """The next (or previous) cron slot from `start`, evaluated in the schedule's zone.

    ISC cron's DST rule: croniter already moves a slot in a spring-forward gap to just
    after the gap; in a fall-back fold a fixed-hour entry fires only on the first pass.
    """
    moments = croniter(
        expression, start.astimezone(spec.zone), second_at_beginning=has_seconds(expression)
    )
    step = moments.get_next if forward else moments.get_prev
    slot: datetime = step(datetime)
    if has_fixed_hour(expression):
        while _is_second_pass(slot.astimezone(spec.zone)):
            slot = step(datetime)
    return slot.astimezone(UTC)


def _is_second_pass(local: datetime) -> bool:
    """A wall time repeated by a fall-back change, seen the second time."""
    return local.fold == 1 and local.replace(fold=0).utcoffset() != local.utcoffset()


def _next_raw_slot(spec: ScheduledJob, after: datetime) -> datetime | None:
    if spec.cron_expression is not None:
        return _cron_slot(spec, spec.cron_expression, after, forward=True)
    if spec.interval_minutes is not None:
        # Slots are aligned to the Unix epoch so every ticker computes the same ones.
        period = timedelta(minutes=spec.interval_minutes)
        elapsed = after.astimezone(UTC) - _EPOCH
        return _EPOCH + (elapsed // period + 1) * period
    assert spec.run_at is not None
    run_at = spec.run_at.astimezone(UTC)
    return run_at if run_at > after else None


def _previous_raw_slot(spec: ScheduledJob, before: datetime) -> datetime | None:
    if spec.cron_expression is not None:
        return _cron_slot(spec, spec.cron_expression, before, forward=False)
    if spec.interval_minutes is not None:
        period = timedelta(minutes=spec.interval_minutes)
        elapsed = before.astimezone(UTC) - _TICK - _EPOCH
        return _EPOCH + (elapsed // period) * period
    assert spec.run_at is not None
    run_at = spec.run_at.astimezone(UTC)
    return run_at if run_at < before else None


def _in_active_hours(spec: ScheduledJob, slot: datetime) -> bool:
    return spec.active_hours is None or spec.active_hours.contains(slot.astimezone(spec.zone))


def next_fire_after(spec: ScheduledJob, after: datetime) -> datetime | None:
    """The first slot strictly after `after` inside the active hours, or None if none is left."""
    slot = _next_raw_slot(spec, after)
    for _ in range(_MAX_WINDOW_JUMPS):
        if slot is None or spec.active_hours is None or _in_active_hours(spec, slot):
            return slot
        opening = spec.active_hours.next_opening(slot.astimezone(spec.zone))
        slot = _next_raw_slot(spec, opening.astimezone(UTC) - _TICK)
    return None


def slots_between(spec: ScheduledJob, after: datetime, until: datetime) -> Iterator[datetime]:
    """Slots in (after, until], oldest first."""
    slot = next_fire_after(spec, after)
    while slot is not None and slot <= until:
        yield slot
        slot = next_fire_after(spec, slot)


def slots_newest_first(spec: ScheduledJob, after: datetime, until: datetime) -> Iterator[datetime]:
    """Slots in (after, until], newest first: finds recent missed slots without
    walking forward through a long outage."""
    slot = _previous_raw_slot(spec, until + _TICK)
    jumps = 0
    while slot is not None and slot > after:
        if spec.active_hours is None or _in_active_hours(spec, slot):
            yield slot
            slot = _previous_raw_slot(spec, slot)
        elif jumps < _MAX_WINDOW_JUMPS:
            jumps += 1
            closing = spec.active_hours.last_closing(slot.astimezone(spec.zone))
            slot = _previous_raw_slot(spec, closing.astimezone(UTC))
        else:
            return
