"""Active hours as instants: when the wall time of a zone lies inside a daily window.

A slot is kept when its own wall time is inside the window (`ActiveHours.contains`), nothing
more: a window edge in a spring-forward gap opens (or closes) at the first instant after the
gap, and wall times repeated by a fall-back are inside (or outside) the window on both passes.

To skip a closed stretch the schedule search needs the next (previous) instant at which the
window is open; between two offset changes wall time is UTC plus a constant, so that is the
wall-time answer of `ActiveHours` shifted back, unless an offset change comes first.
Instants are naive UTC datetimes.
"""

from datetime import datetime, timedelta

from natscron_shared.models import ActiveHours
from natscron_shared.zones import Timeline

_TICK = timedelta(microseconds=1)


class ActiveWindow:
    """One schedule's active hours in its zone."""

    def __init__(self, hours: ActiveHours, timeline: Timeline) -> None:
        self._hours = hours
        self._timeline = timeline

    def contains(self, instant: datetime) -> bool:
        return self._hours.contains(instant + self._timeline.offset_at(instant))

    def next_open(self, instant: datetime) -> datetime:
        """The first instant at or after `instant` inside the window."""
        while True:
            offset = self._timeline.offset_at(instant)
            wall = instant + offset
            opening = wall if self._hours.contains(wall) else self._hours.next_opening(wall)
            crossed = self._timeline.between(instant, opening - offset)
            if not crossed:
                return opening - offset
            instant = crossed[0].at

    def last_open(self, instant: datetime) -> datetime:
        """The last instant before `instant` inside the window."""
        while True:
            offset = self._timeline.offset_at(instant - _TICK)
            wall = instant + offset - _TICK
            if not self._hours.contains(wall):
                wall = self._hours.last_closing(wall) - _TICK
            crossed = self._timeline.between(wall - offset, instant - _TICK)
            if not crossed:
                return wall - offset
            instant = crossed[-1].at
