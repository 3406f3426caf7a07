"""Cron text to the set of values of each field: the one place that knows the syntax.

The language is ISC cron's, 5 fields or 6 with seconds first:

- a field is a comma list of items; an item is `*`, a value `a` or a range `a-b` (upwards),
  optionally with a step: `*/n`, `a-b/n`, and `a/n` meaning `a-<max>/n` (croniter's reading);
- months may be named `jan`-`dec`, weekdays `sun`-`sat` (any case); weekdays 0 and 7 are Sunday;
- `?` is `*` in the two day fields.

croniter's extensions (`L`, `W`, `#`, `H`, `R`, a year field) are rejected: each needs rules of
its own that natscron does not define. So is an expression that can never fire (`0 0 30 2 *`).

Two readings follow the text, not the values, as ISC cron 4.1 does (its DOM_STAR, DOW_STAR,
MIN_STAR and HR_STAR flags, set from a field's first character):

- a day field that starts with `*` or `?` is unrestricted (`*/2` too), and only when neither
  day field is unrestricted does a day match if *either* matches;
- an entry is a wildcard entry when its minute or its hour field starts with `*` (`*`, `*/15`),
  and a fixed-time entry otherwise: `0-59 2`, `0 0-23`, `0 1-5/2` and `5,*/10 2` are fixed
  time. A 6-field expression's seconds field does not count: `*/10 30 2 * * *` is fixed time.
  The DST rules of `cron_engine` depend on it.
"""

from calendar import monthrange
from dataclasses import dataclass
from functools import lru_cache

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_LEAP_YEAR = 2000


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    star_high: int
    names: dict[str, int]


_FIELDS = (
    _Field("second", 0, 59, 59, {}),
    _Field("minute", 0, 59, 59, {}),
    _Field("hour", 0, 23, 23, {}),
    _Field("day of month", 1, 31, 31, {}),
    _Field("month", 1, 12, 12, {name: n for n, name in enumerate(_MONTHS, 1)}),
    _Field("day of week", 0, 7, 6, {name: n for n, name in enumerate(_WEEKDAYS)}),
)


@dataclass(frozen=True)
class CronFields:
    """The values each field allows, sorted; weekdays 0 (Sunday) to 6."""

    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: tuple[int, ...]
    months: tuple[int, ...]
    weekdays: tuple[int, ...]
    any_day: bool
    """The day-of-month field starts with `*` or `?`."""
    any_weekday: bool
    """The day-of-week field starts with `*` or `?`."""
    fixed_time: bool
    """Neither the minute nor the hour field starts with `*` (ISC's fixed-time entry)."""

    @property
    def either_day(self) -> bool:
        """Both day fields are restricted, so a day matching either one matches."""
        return not self.any_day and not self.any_weekday

    @property
    def some_month_has_a_day(self) -> bool:
        """Some allowed month has an allowed day of month (February counting its 29th)."""
        return any(self.days[0] <= monthrange(_LEAP_YEAR, month)[1] for month in self.months)


@lru_cache(maxsize=4096)
def parse_cron(expression: str) -> CronFields:
    """The fields of a 5- or 6-field expression; ValueError says what is wrong and where."""
    texts = expression.split()
    if len(texts) not in (5, 6):
        raise ValueError(f"cron expression {expression!r} has {len(texts)} fields; expected 5 or 6")
    if len(texts) == 5:
        texts.insert(0, "0")
    second, minute, hour, day, month, weekday = (
        _values(expression, text, field) for text, field in zip(texts, _FIELDS, strict=True)
    )
    fields = CronFields(
        seconds=second,
        minutes=minute,
        hours=hour,
        days=day,
        months=month,
        weekdays=tuple(sorted({n % 7 for n in weekday})),
        any_day=texts[3][0] in "*?",
        any_weekday=texts[5][0] in "*?",
        fixed_time=not texts[1].startswith("*") and not texts[2].startswith("*"),
    )
    if not fields.either_day and not fields.some_month_has_a_day:
        raise ValueError(
            f"cron expression {expression!r} never fires: day of month {texts[3]!r}"
            f" does not occur in month {texts[4]!r}"
        )
    return fields


def _values(expression: str, text: str, field: _Field) -> tuple[int, ...]:
    values: set[int] = set()
    for item in text.split(","):
        try:
            values.update(_item(item, field))
        except ValueError as exc:
            raise ValueError(
                f"cron expression {expression!r}: {field.name} {text!r}: {exc}"
            ) from None
    return tuple(sorted(values))


def _item(item: str, field: _Field) -> range:
    body, slash, step_text = item.partition("/")
    step = _step(step_text) if slash else 1
    if body == "*" or (body == "?" and field.name.startswith("day")):
        return range(field.low, field.star_high + 1, step)
    first_text, dash, last_text = body.partition("-")
    first = _value(first_text, field)
    if dash:
        last = _value(last_text, field)
        if last < first:
            raise ValueError(f"range {body!r} runs backwards")
    else:
        last = field.high if slash else first
    return range(first, last + 1, step)


def _value(text: str, field: _Field) -> int:
    if text.lower() in field.names:
        return field.names[text.lower()]
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"{text!r} is not a number{' or a name' if field.names else ''}")
    if not field.low <= int(text) <= field.high:
        raise ValueError(f"{text} is outside {field.low}-{field.high}")
    return int(text)


def _step(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise ValueError(f"step {text!r} is not a whole number of at least 1")
    return int(text)


_NUMBERS = {
    (0, 59): "[1-5][0-9]|[0-9]",
    (0, 23): "1[0-9]|2[0-3]|[0-9]",
    (1, 31): "[12][0-9]|3[01]|[1-9]",
    (1, 12): "1[0-2]|[1-9]",
    (0, 7): "[0-7]",
}
"""Each value written one way only (after any leading zeros), so a regular expression engine
that backtracks never tries the same text many ways."""


def _any_case(name: str) -> str:
    return "".join(f"[{letter.upper()}{letter}]" for letter in name)


def _field_pattern(field: _Field) -> str:
    """One field's syntax, as `_values` reads it: numbers in range (any leading zeros), its
    names in any case, `*` (and `?` in the day fields), ranges, steps, comma lists."""
    names = "".join(f"|{_any_case(name)}" for name in field.names)
    value = f"(0*({_NUMBERS[field.low, field.high]}){names})"
    star = r"\*|\?" if field.name.startswith("day") else r"\*"
    item = f"({star}|{value}(-{value})?)(/0*[1-9][0-9]*)?"
    return f"{item}(,{item})*"


def _cron_pattern() -> str:
    second, minute, hour, day, month, weekday = (_field_pattern(field) for field in _FIELDS)
    gap = "[ \t]+"
    fields = gap.join((minute, hour, day, month, weekday))
    return f"^[ \t]*({second}{gap})?{fields}[ \t]*$"


CRON_PATTERN = _cron_pattern()
"""The syntax as a regular expression, for JSON schemas: every expression `parse_cron`
accepts matches it, fields split by spaces or tabs. What it cannot say is refused by
`parse_cron` alone: a range running backwards, a day of month no month has."""
