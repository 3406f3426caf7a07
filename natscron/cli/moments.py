"""Times as the command line shows them, one format everywhere: `2026-12-06 02:30:00 EST`
in a schedule's time zone (its abbreviation, or its offset where tzdata has none:
`2026-12-06 06:30:00 +04`), and `2026-12-06 07:30:00 UTC` where no zone is known. Where a
table is short of room, an age instead (`5m`, `in 8s`), as `kubectl get` shows AGE, or
`5m ago`."""

from datetime import UTC, datetime, tzinfo

from natscron_shared.timing.zones import iana_zones, zone_named

NONE = "-"
AGE_UNITS = ((2 * 86400, 86400, "d"), (2 * 3600, 3600, "h"), (120, 60, "m"), (0, 1, "s"))
"""From which number of seconds a unit is used, its size, its letter: `90s`, `2m`, `2h`."""


def _zone(name: str | None) -> tzinfo:
    if name and name in iana_zones():
        return zone_named(name)
    return UTC


def moment(value: datetime | None, zone: str | None = None) -> str:
    """`value` in `zone` (an IANA name; UTC when None or unknown), with the zone's name."""
    if value is None:
        return NONE
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    local = aware.astimezone(_zone(zone))
    return local.strftime("%Y-%m-%d %H:%M:%S ") + (local.tzname() or "UTC")


def age(value: datetime | None, now: datetime) -> str:
    """How long ago (`5m`), or in how long (`in 8s`) for a time still to come."""
    if value is None:
        return NONE
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    seconds = int((now - aware).total_seconds())
    span = abs(seconds)
    size, letter = next((size, letter) for least, size, letter in AGE_UNITS if span >= least)
    text = f"{span // size}{letter}"
    return text if seconds >= 0 else f"in {text}"


def relative(value: datetime | None, now: datetime) -> str:
    """`2m ago`, or `in 8s`."""
    shown = age(value, now)
    return shown if shown == NONE or shown.startswith("in ") else f"{shown} ago"
