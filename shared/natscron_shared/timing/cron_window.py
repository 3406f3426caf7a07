"""Whether a cron schedule ever fires inside its active hours: judged on the engine's slots,
spring-forward slots included, so a schedule refused for never firing there never does.

A slot is kept when its own wall time is inside the window (`active_hours`). The slots are of
two kinds (`cron_engine`): a matching wall time that happens (on either pass of a fold, which
has the same wall time), and, for a fixed-time entry, the end of a spring-forward gap holding
a matching wall time, whose wall time is the gap's end, not a match: `15 1 * * *` in
Europe/London fires at 02:00 once a year.

So the question splits. If no matching wall time lies inside the window on any weekday
(`_some_match_inside`, a week's reasoning), only gap slots can be inside, and the zone's gaps
in the span are looked at one by one. Otherwise the engine is asked for its first slot inside
the window, from the start of the span: such wall times recur, so it finds one after a few
steps unless every one of them falls in a gap, and the span bounds it then.

`SPAN` is the span judged: from the Unix epoch (a backfill may fire past slots; nothing is
earlier) to 2500. tzdata lists offset changes one by one until 2087 at most (Casablanca's;
`tests/timing/test_cron_zones.py` checks it is before 2100); after that a zone follows
fixed rules, which, like cron's days, repeat with the Gregorian calendar every 400 years, so
2100-2499 holds every slot a later year can have. A schedule whose slots met its window only
in the past (a zone that gave up DST) is accepted, and does not fire.
"""

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from math import ceil

from natscron_shared.timing.active_hours import ActiveHours, ActiveWindow
from natscron_shared.timing.cron_calendar import WallCalendar
from natscron_shared.timing.cron_engine import cron_engine
from natscron_shared.timing.cron_fields import CronFields, parse_cron
from natscron_shared.timing.schedule import next_fire_after
from natscron_shared.timing.zones import timeline_of

SPAN = (datetime(1970, 1, 1, tzinfo=UTC), datetime(2500, 1, 1, tzinfo=UTC))
_DAY = 86_400
_TICK = timedelta(microseconds=1)


@lru_cache(maxsize=4096)
def fires_inside(
    expression: str, timezone: str, hours: ActiveHours, span: tuple[datetime, datetime] = SPAN
) -> bool:
    """Whether the engine has a slot inside the window in `[span[0], span[1])` (aware)."""
    fields = parse_cron(expression)
    if _some_match_inside(fields, hours):
        low, high = span
        spec = _Bounded(expression, timezone, hours, start_at=low, end_at=high - _TICK)
        return next_fire_after(spec, low - _TICK) is not None
    return fields.fixed_time and _gap_slot_inside(expression, timezone, hours, span)


def _gap_slot_inside(
    expression: str, timezone: str, hours: ActiveHours, span: tuple[datetime, datetime]
) -> bool:
    """Whether a gap of the zone in the span ends inside the window with a slot of the
    engine's; the zone's years are scanned only up to the first such gap."""
    engine = cron_engine(expression, timezone)
    timeline = timeline_of(timezone)
    window = ActiveWindow(hours, timeline)
    low, high = (moment.astimezone(UTC).replace(tzinfo=None) for moment in span)
    return any(
        change.is_gap
        and window.contains(change.at)
        and engine.next_slot(change.at - _TICK) == change.at
        for change in timeline.each_between(low - _TICK, high - _TICK)
    )


@dataclass(frozen=True, slots=True)
class _Bounded:
    """The cron schedule as `schedule.SlotSpec`, its slots bounded to the span."""

    cron_expression: str
    timezone: str
    active_hours: ActiveHours
    start_at: datetime
    end_at: datetime
    scheduled_job_id: str = "fires_inside"
    interval_period: None = None
    run_at: None = None
    jitter_seconds: float = 0.0


def _some_match_inside(fields: CronFields, hours: ActiveHours) -> bool:
    """Whether some wall time the expression matches lies inside the window, on some date.

    Every (month, day) of the Gregorian calendar falls on each weekday within its 400-year
    cycle, so the days a cron matches can fall on its allowed weekdays (on any weekday if a
    day matching its day of month alone is enough), and only the weekdays decide.
    """
    calendar = WallCalendar(fields)
    every_day = range(1, 8)
    open_days = {
        day
        for day in every_day
        for low, high in _open_spans(day, hours.start, hours.end, hours.weekdays)
        if (found := calendar.next_time(low)) is not None and found < high
    }
    matching_days = {weekday or 7 for weekday in fields.weekdays}
    if fields.either_day and fields.some_month_has_a_day:
        matching_days.update(every_day)
    return bool(open_days & matching_days)


def _open_spans(
    day: int, start: time, end: time, weekdays: Collection[int]
) -> list[tuple[int, int]]:
    """The whole seconds of a day with ISO weekday `day` inside the window, as [low, high)."""
    low, high = _seconds_up(start), _seconds_up(end)
    previous_day = 7 if day == 1 else day - 1
    if start < end:
        return [(low, high)] if day in weekdays else []
    spans = [(low, _DAY)] if day in weekdays else []
    return spans + ([(0, high)] if previous_day in weekdays else [])


def _seconds_up(moment: time) -> int:
    """The first whole second of the day at or after `moment`."""
    return ceil(moment.hour * 3600 + moment.minute * 60 + moment.second + moment.microsecond / 1e6)
