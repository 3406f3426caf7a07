"""Cron expressions as users give them: 5 fields, or 6 with seconds first (`*/10 * * * * *`).

The syntax and its reading are in `cron_fields`, the DST rules in `cron_engine`; this module
holds the checks a spec must pass, so a schedule that can never fire is refused when applied
instead of failing later in the ticker.
"""

from collections.abc import Collection
from datetime import time
from math import ceil

from natscron_shared.timing.cron_calendar import WallCalendar
from natscron_shared.timing.cron_fields import parse_cron

_DAY = 86_400


def has_seconds(expression: str) -> bool:
    return len(expression.split()) == 6


def validate_cron(expression: str) -> str:
    """Return the expression normalised, or raise ValueError saying what is wrong."""
    normalised = " ".join(expression.split())
    parse_cron(normalised)
    return normalised


def check_fires_within(expression: str, start: time, end: time, weekdays: Collection[int]) -> None:
    """Raise ValueError if none of the wall times the expression matches lies inside the daily
    window [start, end) of `weekdays` (ISO): the schedule would never fire.

    Judged on wall times: a slot that a DST change moves into the window does not count. Every
    (month, day) of the Gregorian calendar falls on each weekday within its 400-year cycle, so
    the days a cron matches can fall on its allowed weekdays (on any weekday if a day matching
    its day of month alone is enough), and only the weekdays decide.
    """
    fields = parse_cron(expression)
    calendar = WallCalendar(fields)
    every_day = range(1, 8)
    open_days = {
        day
        for day in every_day
        for low, high in _open_spans(day, start, end, weekdays)
        if (found := calendar.next_time(low)) is not None and found < high
    }
    matching_days = {weekday or 7 for weekday in fields.weekdays}
    if fields.either_day and fields.some_month_has_a_day:
        matching_days.update(every_day)
    if not open_days & matching_days:
        raise ValueError(
            f"cron expression {expression!r} never fires inside active_hours"
            f" {start.isoformat()}-{end.isoformat()} on weekdays {sorted(weekdays)}"
        )


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
