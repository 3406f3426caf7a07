"""Cron expressions as users give them: 5 fields, or 6 with seconds first (`*/10 * * * * *`).

The syntax and its reading are in `cron_fields`, the DST rules in `cron_engine`; this module
holds the checks a spec must pass, so a schedule that can never fire is refused when applied
instead of failing later in the ticker.
"""

from natscron_shared.timing.active_hours import ActiveHours
from natscron_shared.timing.cron_fields import parse_cron
from natscron_shared.timing.cron_window import SPAN, fires_inside


def has_seconds(expression: str) -> bool:
    return len(expression.split()) == 6


def validate_cron(expression: str) -> str:
    """Return the expression normalised, or raise ValueError saying what is wrong."""
    normalised = " ".join(expression.split())
    parse_cron(normalised)
    return normalised


def check_fires_within(expression: str, timezone: str, hours: ActiveHours) -> None:
    """Raise ValueError if none of the expression's slots in `timezone` lies inside `hours`:
    the schedule would never fire. Judged on the slots themselves (`cron_window`), so a slot
    a spring-forward gap moves into the window counts."""
    if not fires_inside(expression, timezone, hours):
        start, end = (moment.isoformat() for moment in (hours.start, hours.end))
        first, last = (moment.year for moment in SPAN)
        raise ValueError(
            f"cron expression {expression!r} never fires inside active_hours {start}-{end}"
            f" on weekdays {sorted(hours.weekdays)} in {timezone}"
            f" (DST changes included, {first}-{last - 1})"
        )
