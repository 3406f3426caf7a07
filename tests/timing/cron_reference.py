"""A slow, obviously-correct reference for natscron's schedule rules, to test the engine against.

It shares no code with `natscron_shared`: it parses the expression itself, walks wall time in the
zone minute by minute (second by second inside a matching minute for 6 fields), and applies the
DST rules one wall time at a time with zoneinfo's `fold`. The rules are ISC cron 4.1's, read
from its source: `entry.c` marks an entry MIN_STAR or HR_STAR when the text of its minute or
hour field starts with `*`, and `cron.c` runs such a "wildcard" entry by the clock's minutes as
they come, while a "fixed-time" entry (neither flag) runs once for time skipped forward and not
again for time repeated. Seconds, natscron's sixth field, set no flag. So:

- a wall time that happens once is a slot;
- a wall time that happens twice (fall-back fold) is two slots for a wildcard entry, and only
  the first for a fixed-time entry;
- a wall time that never happens (spring-forward gap) is no slot for a wildcard entry, and for
  a fixed-time entry the instant the gap ends (all such wall times of one gap give that one
  instant, where ISC runs one job per minute, back to back);
- any offset change counts, whatever its size (ISC's thresholds for clock resets do not apply);
- active hours keep the slots whose own wall time lies in the window.

Inputs are the validated `ScheduledJob` fields; only cron and interval schedules are covered.
"""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from natscron_shared.contract.models import ScheduledJob
from natscron_shared.timing.active_hours import ActiveHours

MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_NAMES = {
    **{name: n for n, name in enumerate(MONTHS, 1)},
    **{name: n for n, name in enumerate(WEEKDAYS)},
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MINUTE = timedelta(minutes=1)


class Cron:
    """The parsed expression: a set of values per field, plus the two readings of its text."""

    def __init__(self, expression: str) -> None:
        texts = expression.split()
        if len(texts) == 5:
            texts.insert(0, "0")
        self.six_fields = len(expression.split()) == 6
        second, minute, hour, day, month, weekday = texts
        self.seconds = _values(second, 0, 59)
        self.minutes = _values(minute, 0, 59)
        self.hours = _values(hour, 0, 23)
        self.days = _values(day, 1, 31)
        self.months = _values(month, 1, 12)
        self.weekdays = {n % 7 for n in _values(weekday, 0, 6, high=7)}
        # ISC cron: a day field starting with `*` (or `?`) leaves the choice to the other one;
        # when neither does, a day matching either field matches.
        self.either_day = day[0] not in "*?" and weekday[0] not in "*?"
        self.wildcard = minute[0] == "*" or hour[0] == "*"

    def matches_minute(self, wall: datetime) -> bool:
        day_ok = wall.day in self.days
        weekday_ok = wall.isoweekday() % 7 in self.weekdays
        return (
            wall.minute in self.minutes
            and wall.hour in self.hours
            and wall.month in self.months
            and ((day_ok or weekday_ok) if self.either_day else (day_ok and weekday_ok))
        )


def _values(text: str, low: int, star_high: int, high: int | None = None) -> set[int]:
    top = star_high if high is None else high
    values: set[int] = set()
    for item in text.split(","):
        body, _, step = item.partition("/")
        if body in ("*", "?"):
            first, last = low, star_high
        elif "-" in body:
            first, last = (_number(part) for part in body.split("-"))
        else:
            first = _number(body)
            last = top if step else first
        values.update(range(first, last + 1, int(step) if step else 1))
    return values


def _number(text: str) -> int:
    return _NAMES[text.lower()] if text.isalpha() else int(text)


def cron_slots(cron: Cron, zone: ZoneInfo, lo: datetime, hi: datetime) -> list[datetime]:
    """The slots in (lo, hi], oldest first, as aware UTC datetimes."""
    offsets = [
        (lo + timedelta(minutes=10 * n)).astimezone(zone).utcoffset()
        for n in range(int((hi - lo) / timedelta(minutes=10)) + 2)
    ]
    known = [offset for offset in offsets if offset is not None]
    wall = (lo + min(known)).replace(tzinfo=None, second=0, microsecond=0) - _MINUTE
    last_wall = (hi + max(known)).replace(tzinfo=None) + _MINUTE
    slots: set[datetime] = set()
    while wall <= last_wall:
        if cron.matches_minute(wall):
            for second in sorted(cron.seconds) if cron.six_fields else [0]:
                slots.update(_slots_of_wall(cron, zone, wall.replace(second=second)))
        wall += _MINUTE
    return sorted(slot for slot in slots if lo < slot <= hi)


def _slots_of_wall(cron: Cron, zone: ZoneInfo, wall: datetime) -> list[datetime]:
    happens = sorted(
        {
            instant
            for fold in (0, 1)
            if _local(instant := wall.replace(tzinfo=zone, fold=fold).astimezone(UTC), zone) == wall
        }
    )
    if cron.wildcard:
        return happens
    return happens[:1] if happens else [_end_of_gap(wall, zone)]


def _local(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def _end_of_gap(wall: datetime, zone: ZoneInfo) -> datetime:
    """The first instant with the new offset: bisection between the two readings of `wall`."""
    before = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)  # read with the new offset
    after = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)  # read with the old offset
    new_offset = after.astimezone(zone).utcoffset()
    while after - before > timedelta(seconds=1):
        middle = before + timedelta(seconds=(after - before).total_seconds() // 2)
        if middle.astimezone(zone).utcoffset() == new_offset:
            after = middle
        else:
            before = middle
    return after


def interval_slots(minutes: float, lo: datetime, hi: datetime) -> list[datetime]:
    period = timedelta(minutes=minutes)
    slot = _EPOCH + ((lo - _EPOCH) // period) * period
    slots = []
    while slot <= hi:
        if slot > lo:
            slots.append(slot)
        slot += period
    return slots


def in_window(hours: ActiveHours, local: datetime) -> bool:
    """The window test, written out: a window belongs to the day it starts on."""
    moment = local.time().replace(tzinfo=None)
    day = local.isoweekday()
    previous_day = 7 if day == 1 else day - 1
    if hours.start < hours.end:
        return day in hours.weekdays and hours.start <= moment < hours.end
    return (moment >= hours.start and day in hours.weekdays) or (
        moment < hours.end and previous_day in hours.weekdays
    )


def reference_slots(spec: ScheduledJob, lo: datetime, hi: datetime) -> list[datetime]:
    """Every slot of a cron or interval schedule in (lo, hi], oldest first."""
    zone = ZoneInfo(spec.timezone)
    if spec.cron_expression is not None:
        slots = cron_slots(Cron(spec.cron_expression), zone, lo, hi)
    else:
        assert spec.interval_minutes is not None
        slots = interval_slots(spec.interval_minutes, lo, hi)
    hours = spec.active_hours
    return [slot for slot in slots if hours is None or in_window(hours, slot.astimezone(zone))]
