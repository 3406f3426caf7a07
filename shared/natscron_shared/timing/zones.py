"""Time zones for the schedule maths: one `ZoneInfo` per name, and where its offset changes.

`ZoneInfo(name)` keeps only 8 zones strongly cached, so a ticker with schedules in more zones
would reload them; `zone_named` keeps every zone it was asked for (there are about 600).

The cron engine and the active-hours search work in wall time between offset changes, so they
need the changes themselves. zoneinfo does not expose them; `Timeline` finds them by reading
the offset every `PROBE_STEP` and bisecting to the second where it differs, one UTC year at a
time, cached. That is exact as long as two changes are never closer than `PROBE_STEP`: the
closest in tzdata are about 4 days apart (Africa/Freetown, 1939). The engine also looks back
`FALL_BACK_LIMIT` for a fall-back it may be in; the longest is 24 hours (America/Adak, 1867).
`tests/timing/test_cron_zones.py` checks both bounds against the installed data.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from importlib.resources import files
from zoneinfo import ZoneInfo

PROBE_STEP = timedelta(days=3)
FALL_BACK_LIMIT = timedelta(days=2)
# Offset changes are looked for in these years only, away from the ends of `datetime`.
FIRST_YEAR, LAST_YEAR = 2, 9998
_SECOND = timedelta(seconds=1)


@cache
def iana_zones() -> frozenset[str]:
    """The IANA zone names, from the pinned `tzdata` package: the same list on every machine
    (and in every JSON schema), where the system's time zone files differ."""
    return frozenset(files("tzdata").joinpath("zones").read_text().split())


@cache
def zone_named(name: str) -> ZoneInfo:
    """The zone of an IANA name; raises like `ZoneInfo(name)` for an unknown one."""
    return ZoneInfo(name)


@dataclass(frozen=True)
class Transition:
    """An offset change: from `at` (naive UTC, the first instant of the new offset) on,
    wall time is UTC + `after` instead of UTC + `before`."""

    at: datetime
    before: timedelta
    after: timedelta

    @property
    def is_gap(self) -> bool:
        """Clocks jump forward: wall times in [at + before, at + after) never happen."""
        return self.after > self.before


class Timeline:
    """The offset changes of one zone; instants are naive UTC datetimes."""

    def __init__(self, zone: ZoneInfo) -> None:
        self._zone = zone
        self._years: dict[int, tuple[Transition, ...]] = {}
        self._steady: dict[int, timedelta | None] = {}
        """Per UTC year: its one offset if it has no change (UTC, most zones, most years),
        so the searches of a ticker firing thousands of slots skip `fromutc`."""

    def offset_at(self, instant: datetime) -> timedelta:
        year = instant.year
        if year not in self._steady:
            self._steady[year] = (
                None if self._in_year(year) else self._offset_from_zone(datetime(year, 1, 1))
            )
        steady = self._steady[year]
        return self._offset_from_zone(instant) if steady is None else steady

    def _offset_from_zone(self, instant: datetime) -> timedelta:
        offset = self._zone.fromutc(instant.replace(tzinfo=self._zone)).utcoffset()
        assert offset is not None
        return offset

    def between(self, low: datetime, high: datetime) -> list[Transition]:
        """The changes with low < at <= high, oldest first."""
        if low.year == high.year:
            changes = self._in_year(low.year)
            return [change for change in changes if low < change.at <= high] if changes else []
        return [
            change
            for year in range(low.year, high.year + 1)
            for change in self._in_year(year)
            if low < change.at <= high
        ]

    def each_between(self, low: datetime, high: datetime) -> Iterator[Transition]:
        """The changes with low < at <= high, oldest first, scanned a year at a time as they
        are asked for: a search that stops early scans no further."""
        for year in range(low.year, high.year + 1):
            for change in self._in_year(year):
                if low < change.at <= high:
                    yield change

    def _in_year(self, year: int) -> tuple[Transition, ...]:
        """The changes with `at` in the UTC year (naive UTC bounds)."""
        found = self._years.get(year)
        if found is None:
            found = self._years[year] = tuple(self._scan(year))
        return found

    def _scan(self, year: int) -> list[Transition]:
        if not FIRST_YEAR <= year <= LAST_YEAR:
            return []
        start, end = datetime(year, 1, 1) - _SECOND, datetime(year + 1, 1, 1) - _SECOND
        changes = []
        probe, offset = start, self._offset_from_zone(start)
        while probe < end:
            following = min(probe + PROBE_STEP, end)
            next_offset = self._offset_from_zone(following)
            if next_offset != offset:
                changes.append(Transition(self._first_with(following, probe), offset, next_offset))
            probe, offset = following, next_offset
        return changes

    def _first_with(self, changed: datetime, unchanged: datetime) -> datetime:
        """The first whole second after `unchanged` with the offset of `changed`."""
        offset = self._offset_from_zone(changed)
        while changed - unchanged > _SECOND:
            middle = unchanged + (changed - unchanged) // _SECOND // 2 * _SECOND
            if self._offset_from_zone(middle) == offset:
                changed = middle
            else:
                unchanged = middle
        return changed


@cache
def timeline_of(name: str) -> Timeline:
    return Timeline(zone_named(name))
