"""Cron expressions: 5 fields, or 6 with seconds first (`*/10 * * * * *`)."""

from datetime import datetime

from croniter import croniter


def has_seconds(expression: str) -> bool:
    return len(expression.split()) == 6


def validate_cron(expression: str) -> str:
    """Return the expression normalised, or raise ValueError saying what is wrong."""
    normalised = " ".join(expression.split())
    fields = len(normalised.split())
    if fields not in (5, 6):
        raise ValueError(f"cron expression {expression!r} has {fields} fields; expected 5 or 6")
    if not croniter.is_valid(normalised, second_at_beginning=has_seconds(normalised)):
        raise ValueError(f"invalid cron expression {expression!r}")
    return normalised


def next_cron_time(expression: str, after: datetime) -> datetime:
    """The first time strictly after `after` (aware, in the schedule's zone) that matches."""
    iterator = croniter(expression, after, second_at_beginning=has_seconds(expression))
    result: datetime = iterator.get_next(datetime)
    return result
