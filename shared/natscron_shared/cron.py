"""Cron expressions: 5 fields, or 6 with seconds first (`*/10 * * * * *`)."""

from croniter import croniter


def has_seconds(expression: str) -> bool:
    return len(expression.split()) == 6


def has_fixed_hour(expression: str) -> bool:
    """True for `30 2 * * *` or `0 1-3 * * *`; false for a wildcard or step hour (`*`, `*/2`,
    `1-5/2`), whose slots follow real elapsed time across DST changes."""
    fields = expression.split()
    hour = fields[2 if has_seconds(expression) else 1]
    return "*" not in hour and "/" not in hour


def validate_cron(expression: str) -> str:
    """Return the expression normalised, or raise ValueError saying what is wrong."""
    normalised = " ".join(expression.split())
    fields = len(normalised.split())
    if fields not in (5, 6):
        raise ValueError(f"cron expression {expression!r} has {fields} fields; expected 5 or 6")
    if not croniter.is_valid(normalised, second_at_beginning=has_seconds(normalised)):
        raise ValueError(f"invalid cron expression {expression!r}")
    return normalised
