"""A schedule in words, for the common shapes only: "at 02:00 every day, America/Indiana/
Indianapolis", "every 15 minutes, UTC", "every 2 hours 30 minutes", "30 minutes after the
previous run finished".

A cron expression outside those shapes (ranges in the time fields, steps with an offset,
both day fields restricted, more than a handful of times a day) gets None rather than a
sentence that is almost right; the preview's fire times are the exact answer.
"""

from datetime import timedelta

from natscron_shared.contract.enums import ChainOn
from natscron_shared.contract.models import ChainLink, ScheduledJob
from natscron_shared.timing.active_hours import ActiveHours

MONTHS = (
    "January", "February", "March", "April", "May", "June", "July",
    "August", "September", "October", "November", "December",
)  # fmt: skip
WEEKDAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
MONTH_NAMES = {name[:3].lower(): index + 1 for index, name in enumerate(MONTHS)}
DAY_NAMES = {name[:3].lower(): index for index, name in enumerate(WEEKDAYS)}
MAX_LISTED_TIMES = 6


class _Unsupported(Exception):
    """The expression has a shape this module does not put into words."""


CHAIN_VERBS = {ChainOn.SUCCESS: "succeeds", ChainOn.FAILURE: "fails", ChainOn.COMPLETION: "ends"}


def describe(spec: ScheduledJob) -> str | None:
    """The spec's schedule in words, with its time zone and active hours, and the runs it
    runs after; or None."""
    chain = _chain(spec.after)
    if spec.cron_expression is None and spec.interval_period is None and spec.run_at is None:
        return chain
    words = _timed(spec)
    if words is None or chain is None:
        return words
    return f"{words}; and {chain}"


def _chain(links: list[ChainLink]) -> str | None:
    """ "after every run of a that succeeds", "after a succeeds and b fails (each since the
    last chained run)"."""
    if not links:
        return None
    if len(links) == 1:
        link = links[0]
        return f"after every run of {link.scheduled_job_id} that {CHAIN_VERBS[link.on]}"
    each = [f"{link.scheduled_job_id} {CHAIN_VERBS[link.on]}" for link in links]
    return f"after {', '.join(each[:-1])} and {each[-1]} (each since the last chained run)"


def _timed(spec: ScheduledJob) -> str | None:
    if spec.run_at is not None:
        return f"once, at {spec.run_at.isoformat()}"
    period = spec.interval_period
    if period is not None and spec.counts_from_last_run:
        words = f"{_duration(period)} after the previous run finished"
    elif period is not None:
        words = f"every {_duration(period)}"
    else:
        assert spec.cron_expression is not None
        cron = describe_cron(spec.cron_expression)
        if cron is None:
            return None
        words = f"{cron}, {spec.timezone}"
    if spec.active_hours is not None:
        words += f"; only {_window(spec.active_hours)}"
    return words


def describe_cron(expression: str) -> str | None:
    fields = expression.split()
    if len(fields) == 5:
        fields = ["0", *fields]
        with_seconds = False
    elif len(fields) == 6:
        with_seconds = True
    else:
        return None
    second, minute, hour, day, month, weekday = fields
    try:
        times = _times(second, minute, hour, with_seconds)
        days = _days(day, month, weekday)
    except _Unsupported:
        return None
    if times.startswith("every"):  # "every 15 minutes", not "every 15 minutes every day"
        days = days.removeprefix(" every day")
    return times + days


def _times(second: str, minute: str, hour: str, with_seconds: bool) -> str:
    step = _step(second) if with_seconds else None
    if with_seconds and (second == "*" or step):
        if minute != "*" or hour != "*":
            raise _Unsupported
        return "every second" if second == "*" else f"every {_plural(step or 1, 'second')}"
    seconds = _numbers(second, 0, 59)
    if len(seconds) != 1:
        raise _Unsupported
    if minute == "*" or _step(minute):
        if hour != "*" or seconds != [0]:
            raise _Unsupported
        every = _step(minute)
        return f"every {_plural(every, 'minute')}" if every else "every minute"
    minutes = _numbers(minute, 0, 59)
    if hour == "*" or _step(hour):
        if len(minutes) != 1 or seconds != [0]:
            raise _Unsupported
        every = _step(hour)
        at = f":{minutes[0]:02d}"
        return f"every {_plural(every, 'hour')} at {at}" if every else f"every hour at {at}"
    hours = _numbers(hour, 0, 23)
    moments = [(h, m) for h in hours for m in minutes]
    if len(moments) > MAX_LISTED_TIMES:
        raise _Unsupported
    suffix = f":{seconds[0]:02d}" if seconds != [0] else ""
    return "at " + _listed([f"{h:02d}:{m:02d}{suffix}" for h, m in moments])


def _days(day: str, month: str, weekday: str) -> str:
    day = "*" if day == "?" else day
    weekday = "*" if weekday == "?" else weekday
    months = "" if month == "*" else " in " + _listed([MONTHS[m - 1] for m in _months(month)])
    if day != "*" and weekday != "*":
        raise _Unsupported  # either day may match: too easy to misread in words
    if day == "*" and weekday == "*":
        return " every day" + months
    if day != "*":
        days = _numbers(day, 1, 31)
        noun = "day" if len(days) == 1 else "days"
        of = months or " of every month"
        return f" on {noun} {_listed([str(d) for d in days])}{of}"
    return " on " + _weekdays(weekday) + months


def _weekdays(field: str) -> str:
    if "-" in field and "," not in field and "/" not in field:
        low, high = (_weekday(part) for part in field.split("-"))
        if (low, high) == (1, 5):
            return "weekdays (Monday to Friday)"
        if low < high:
            return f"{WEEKDAYS[low]} to {WEEKDAYS[high]}"
        raise _Unsupported
    days = sorted({_weekday(part) for part in field.split(",")}, key=lambda d: (d == 0, d))
    return _listed([WEEKDAYS[d] for d in days])


def _weekday(text: str) -> int:
    if text.lower() in DAY_NAMES:
        return DAY_NAMES[text.lower()]
    value = _number(text, 0, 7)
    return 0 if value == 7 else value


def _months(field: str) -> list[int]:
    return [
        MONTH_NAMES[part.lower()] if part.lower() in MONTH_NAMES else _number(part, 1, 12)
        for part in field.split(",")
    ]


def _step(field: str) -> int | None:
    """n for `*/n`, else None."""
    if field.startswith("*/"):
        return _number(field[2:], 1, 59)
    return None


def _numbers(field: str, low: int, high: int) -> list[int]:
    return sorted({_number(part, low, high) for part in field.split(",")})


def _number(text: str, low: int, high: int) -> int:
    if not text.isdigit() or not low <= int(text) <= high:
        raise _Unsupported
    return int(text)


def _listed(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _plural(count: int | None, unit: str) -> str:
    return unit if count == 1 else f"{count} {unit}s"


def _duration(period: timedelta) -> str:
    seconds = period.total_seconds()
    parts = []
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        whole, seconds = divmod(seconds, size)
        if whole:
            parts.append(f"{int(whole)} {unit}{'s' if whole != 1 else ''}")
    if seconds:
        parts.append(f"{seconds:g} second{'s' if seconds != 1 else ''}")
    return " ".join(parts)


def _window(hours: ActiveHours) -> str:
    span = f"{hours.start.strftime('%H:%M')}-{hours.end.strftime('%H:%M')}"
    if set(hours.weekdays) == set(range(1, 8)):
        return span
    names = [WEEKDAYS[day % 7][:3] for day in sorted(hours.weekdays)]
    return f"{span} on {', '.join(names)}"
