"""Cron slots as instants: the wall times an expression matches, read in the schedule's zone.

The rules are ISC cron 4.1's (`cron.c`, `find_jobs` and its main loop), for a schedule in a
zone whose UTC offset changes. An entry is a wildcard entry when its minute or its hour field
starts with `*`, a fixed-time entry otherwise (`cron_fields`):

1. A wall time that happens once is a slot, at that instant.
2. Fall-back fold (a wall time happens twice): a wildcard entry follows real elapsed time and
   has a slot on both passes; a fixed-time entry only on the first.
3. Spring-forward gap (a wall time never happens): a wildcard entry has no slot; a fixed-time
   entry has one slot at the instant the gap ends (the first instant of the new offset, second
   0 of the first minute after the gap in a whole-minute zone), however many of its wall
   times, seconds included, fall in the gap. A slot matching that instant anyway is the same
   slot. ISC runs one job per matching minute there, back to back; a slot is an instant, and
   a run's id is made of it, so they are one slot here.
4. Every offset change is read this way, whatever its size and whether or not it is DST. ISC
   sees only its clock jump (and re-reads the offset only when the DST flag flips), so it
   takes a jump forward of under 5 minutes for lateness (every job of the skipped minutes
   runs) and one of about 3 hours or more, either way, for a reset (the skipped time's jobs
   do not run; a fold that long repeats its fixed-time jobs). Here the changes come from
   tzdata, and lateness is catch-up's business.
5. Slots are the same whichever way they are searched: `next_slot` and `previous_slot` walk
   one set, so the slot announced as next is the slot catch-up fires.

The syntax and how each field reads are in `cron_fields`, active hours in `active_hours`, the
refusal of schedules that can never fire in `cron` and `cron_window`.

Between two offset changes wall time is UTC plus a constant, so each search asks
`WallCalendar` for the next (previous) match in that stretch of wall time and moves to the
next (previous) change only when the match lies beyond it. Instants are naive UTC datetimes.
"""

from datetime import datetime, timedelta
from functools import lru_cache

from natscron_shared.timing.cron_calendar import WallCalendar
from natscron_shared.timing.cron_fields import parse_cron
from natscron_shared.timing.zones import FALL_BACK_LIMIT, Timeline, Transition, timeline_of

_SECOND = timedelta(seconds=1)
REMEMBERED = 2
_TICK = timedelta(microseconds=1)


class CronEngine:
    """The slots of one expression in one zone."""

    def __init__(self, expression: str, timeline: Timeline) -> None:
        fields = parse_cron(expression)
        self._calendar = WallCalendar(fields)
        self._fixed_time = fields.fixed_time
        self._timeline = timeline
        self._recent: list[tuple[datetime, datetime]] = []
        """The last `REMEMBERED` searches forward: from when, and the slot each found."""

    def next_slot(self, after: datetime) -> datetime | None:
        """The first slot strictly after `after`. A search from anywhere between a recent
        one's start and the slot it found finds that slot again, without searching: the
        jobs that share an engine (every daily 09:00 in one zone) are mostly asked about
        the same stretches of time, a slot due and the one after it."""
        for start, slot in self._recent:
            if start <= after < slot:
                return slot
        found = self._search_next(after)
        if found is not None:
            self._recent = [(after, found), *self._recent[: REMEMBERED - 1]]
        return found

    def _search_next(self, after: datetime) -> datetime | None:
        offset = self._timeline.offset_at(after)
        low = (after + offset).replace(microsecond=0) + _SECOND
        start = self._timeline.between(after - FALL_BACK_LIMIT, after)
        if start:
            low = max(low, self._first_new_wall(start[-1]))
        while (wall := self._calendar.next_match(low)) is not None:
            slot = wall - offset
            crossed = self._timeline.between(after, slot)
            if not crossed:
                return slot
            change = crossed[0]
            if self._gap_slot(change):
                return change.at
            after, offset = change.at, change.after
            low = self._first_new_wall(change)
        return None

    def previous_slot(self, before: datetime) -> datetime | None:
        """The last slot strictly before `before`."""
        offset = self._timeline.offset_at(before - _TICK)
        high = (before + offset - _TICK).replace(microsecond=0)
        while (wall := self._calendar.previous_match(high)) is not None:
            slot = wall - offset
            crossed = self._timeline.between(slot, before - _TICK)
            if crossed:
                change = crossed[-1]
                if self._gap_slot(change):
                    return change.at
            else:
                start = self._timeline.between(slot - FALL_BACK_LIMIT, slot)
                if not start or wall >= self._first_new_wall(start[-1]):
                    return slot
                change = start[-1]
            before, offset = change.at, change.before
            high = change.at + change.before - _SECOND
        return None

    def gap_slot(self, change: Transition) -> bool:
        """Whether the matching wall times of the gap `change` opens have their one slot at
        its end (`change.at`), as both searches find it: what `explain` reports."""
        return self._gap_slot(change)

    def _first_new_wall(self, change: Transition) -> datetime:
        """The first wall time after `change` that can be a slot: a fixed-time entry skips the
        wall times repeated by a fall-back."""
        if self._fixed_time and not change.is_gap:
            return change.at + change.before
        return change.at + change.after

    def _gap_slot(self, change: Transition) -> bool:
        """Whether a fixed-time entry has a slot when `change` ends a gap: some wall time of
        the gap matches."""
        if not (self._fixed_time and change.is_gap):
            return False
        match = self._calendar.next_match(change.at + change.before)
        return match is not None and match < change.at + change.after


@lru_cache(maxsize=4096)
def cron_engine(expression: str, timezone: str) -> CronEngine:
    """The engine of a (valid) expression in a zone, compiled once."""
    return CronEngine(expression, timeline_of(timezone))
