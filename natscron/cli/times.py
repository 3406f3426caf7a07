"""Times on the command line: ISO 8601 (UTC without an offset) or a duration from now.

A duration counts back for the options that name the past (`--since 2h`: two hours ago;
`-2h` the same) and forward for those that name the future (`preview --after 1d`: a day from
now; `-1d` a day ago). A duration signed against its option's direction (`--since +2h`) is
refused rather than guessed."""

import re
from datetime import UTC, datetime, timedelta

import typer

from natscron_shared.runtime.clock import Clock, SystemClock

CLOCK: Clock = SystemClock()
DURATION = re.compile(r"^([+-]?)(\d+)([smhdw])$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
ISO_HELP = "ISO 8601 (2026-11-25T10:00, UTC without an offset, or 2026-11-25T10:00-05:00)"
PAST_HELP = f"{ISO_HELP} or an age: 30m, 2h, 7d (that long ago)"
FUTURE_HELP = f"{ISO_HELP} or a duration from now: 1d (a day from now), -2h (two hours ago)"


def _iso(text: str, help_text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a time: give {help_text}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _duration(text: str, future: bool) -> datetime | None:
    """The moment a signed duration names, or None when `text` is no duration."""
    found = DURATION.match(text)
    if not found:
        return None
    sign, amount, unit = found.groups()
    span = timedelta(**{UNITS[unit]: int(amount)})
    if not future and sign == "+":
        raise typer.BadParameter(
            f"{text!r} is in the future, and this option takes a past time: give an age"
            f" ({text[1:]}: that long ago) or an ISO 8601 time"
        )
    ahead = future and sign != "-"
    return CLOCK.now() + span if ahead else CLOCK.now() - span


def parse_time(text: str) -> datetime:
    """A past time: an age counts back from now (`2h`: two hours ago)."""
    return _duration(text.strip(), future=False) or _iso(text.strip(), PAST_HELP)


def parse_future_time(text: str) -> datetime:
    """A time to look ahead from: a duration counts forward (`1d`: a day from now)."""
    return _duration(text.strip(), future=True) or _iso(text.strip(), FUTURE_HELP)
