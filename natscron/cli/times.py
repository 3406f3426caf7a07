"""Times on the command line: ISO 8601 (UTC without an offset) or an age (`30m`, `2h`, `7d`)."""

import re
from datetime import UTC, datetime, timedelta

import typer

AGE = re.compile(r"^(\d+)([smhdw])$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(text: str) -> datetime:
    age = AGE.match(text.strip())
    if age:
        amount, unit = age.groups()
        return datetime.now(UTC) - timedelta(**{UNITS[unit]: int(amount)})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a time: give ISO 8601 (2026-11-25T10:00, UTC without an offset)"
            " or an age such as 30m, 2h, 7d"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
