"""When a scheduled job fires: pure functions of the spec and a moment."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from shared.cron import next_cron_time
from shared.models import ScheduledJob

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Enough to step over any active-hours gap of a year of minute slots.
_MAX_SKIPPED_SLOTS = 600_000


def _next_raw_slot(spec: ScheduledJob, after: datetime) -> datetime | None:
    if spec.cron_expression is not None:
        return next_cron_time(spec.cron_expression, after.astimezone(spec.zone)).astimezone(UTC)
    if spec.interval_minutes is not None:
        # Slots are aligned to the Unix epoch so every ticker computes the same ones.
        period = timedelta(minutes=spec.interval_minutes)
        elapsed = after.astimezone(UTC) - _EPOCH
        return _EPOCH + (elapsed // period + 1) * period
    assert spec.run_at is not None
    run_at = spec.run_at.astimezone(UTC)
    return run_at if run_at > after else None


def next_fire_after(spec: ScheduledJob, after: datetime) -> datetime | None:
    """The first slot strictly after `after` inside the active hours, or None if none is left."""
    slot = _next_raw_slot(spec, after)
    for _ in range(_MAX_SKIPPED_SLOTS):
        if slot is None or spec.active_hours is None:
            return slot
        if spec.active_hours.contains(slot.astimezone(spec.zone)):
            return slot
        slot = _next_raw_slot(spec, slot)
    return None


def slots_between(spec: ScheduledJob, after: datetime, until: datetime) -> Iterator[datetime]:
    """Slots in (after, until], oldest first."""
    slot = next_fire_after(spec, after)
    while slot is not None and slot <= until:
        yield slot
        slot = next_fire_after(spec, slot)
