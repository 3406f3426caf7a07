"""Which wall-clock times an expression matches, found field by field, not minute by minute.

Wall times are naive datetimes in whole seconds. A day matches through a bit mask of the days of
its month (bit d = day d): the day-of-month bits and the weekday bits, which depend only on the
weekday of the 1st, are combined by the either-day rule of `cron_fields`. A time of day matches
through the sorted hours, minutes and seconds, carried like the digits of a counter. So the next
or previous match is a few bisections plus one step per month skipped.

Every satisfiable expression matches at least once in any 400 years (the Gregorian calendar,
weekdays included, repeats every 400 years), so a search that finds nothing in `HORIZON_MONTHS`
never will.
"""

from bisect import bisect_left, bisect_right
from calendar import monthrange
from datetime import datetime
from functools import lru_cache

from natscron_shared.timing.cron_fields import CronFields

HORIZON_MONTHS = 401 * 12
_DAY = 86_400


class WallCalendar:
    """The wall times matched by one expression's fields."""

    def __init__(self, fields: CronFields) -> None:
        self._hours = fields.hours
        self._minutes = fields.minutes
        self._seconds = fields.seconds
        self._months = frozenset(fields.months)
        self._either_day = fields.either_day
        self._day_bits = sum(1 << day for day in fields.days)
        self._weekday_bits = _weekday_bits(fields.weekdays)

    def next_match(self, low: datetime) -> datetime | None:
        """The first matching wall time at or after `low` (whole seconds)."""
        year, month, day = low.year, low.month, low.day
        time = self.next_time(low.hour * 3600 + low.minute * 60 + low.second)
        if time is None or not self.days_of(year, month) >> day & 1:
            time, day = self.next_time(0), day + 1
        assert time is not None
        for _ in range(HORIZON_MONTHS):
            later = self.days_of(year, month) >> day << day
            if later:
                return _wall(year, month, (later & -later).bit_length() - 1, time)
            year, month, day = (year + 1, 1, 1) if month == 12 else (year, month + 1, 1)
            if year > 9999:
                return None
        return None

    def previous_match(self, high: datetime) -> datetime | None:
        """The last matching wall time at or before `high` (whole seconds)."""
        year, month, day = high.year, high.month, high.day
        time = self.previous_time(high.hour * 3600 + high.minute * 60 + high.second)
        if time is None or not self.days_of(year, month) >> day & 1:
            time, day = self.previous_time(_DAY - 1), day - 1
        assert time is not None
        for _ in range(HORIZON_MONTHS):
            earlier = self.days_of(year, month) & ((2 << day) - 1)
            if earlier:
                return _wall(year, month, earlier.bit_length() - 1, time)
            year, month, day = (year - 1, 12, 31) if month == 1 else (year, month - 1, 31)
            if year < 1:
                return None
        return None

    def days_of(self, year: int, month: int) -> int:
        """The matching days of a month, as bits."""
        if month not in self._months:
            return 0
        first, length = monthrange(year, month)
        in_month = (2 << length) - 2
        by_day, by_weekday = self._day_bits, self._weekday_bits[first]
        return (by_day | by_weekday if self._either_day else by_day & by_weekday) & in_month

    def next_time(self, second_of_day: int) -> int | None:
        """The first matching time of day at or after `second_of_day`, in seconds."""
        hours, minutes, seconds = self._hours, self._minutes, self._seconds
        hour, rest = divmod(second_of_day, 3600)
        minute, second = divmod(rest, 60)
        h = bisect_left(hours, hour)
        if h < len(hours) and hours[h] == hour:
            m = bisect_left(minutes, minute)
            if m < len(minutes) and minutes[m] == minute:
                s = bisect_left(seconds, second)
                if s < len(seconds):
                    return hour * 3600 + minute * 60 + seconds[s]
                m += 1
            if m < len(minutes):
                return hour * 3600 + minutes[m] * 60 + seconds[0]
            h += 1
        if h < len(hours):
            return hours[h] * 3600 + minutes[0] * 60 + seconds[0]
        return None

    def previous_time(self, second_of_day: int) -> int | None:
        """The last matching time of day at or before `second_of_day`, in seconds."""
        hours, minutes, seconds = self._hours, self._minutes, self._seconds
        hour, rest = divmod(second_of_day, 3600)
        minute, second = divmod(rest, 60)
        h = bisect_right(hours, hour) - 1
        if h >= 0 and hours[h] == hour:
            m = bisect_right(minutes, minute) - 1
            if m >= 0 and minutes[m] == minute:
                s = bisect_right(seconds, second) - 1
                if s >= 0:
                    return hour * 3600 + minute * 60 + seconds[s]
                m -= 1
            if m >= 0:
                return hour * 3600 + minutes[m] * 60 + seconds[-1]
            h -= 1
        if h >= 0:
            return hours[h] * 3600 + minutes[-1] * 60 + seconds[-1]
        return None


@lru_cache(maxsize=128)
def _weekday_bits(weekdays: tuple[int, ...]) -> tuple[int, ...]:
    """Indexed by the weekday of the 1st (Monday = 0): the days of the month on an allowed
    weekday (cron counts from Sunday = 0). There are 128 sets of weekdays, all cached."""
    return tuple(
        sum(1 << day for day in range(1, 32) if (first + day) % 7 in weekdays) for first in range(7)
    )


def _wall(year: int, month: int, day: int, time: int) -> datetime:
    hour, rest = divmod(time, 3600)
    return datetime(year, month, day, hour, *divmod(rest, 60))
