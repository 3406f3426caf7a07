"""Active hours: a daily window in a schedule's zone outside which its slots are skipped.

`ActiveHours` is the window as users give it, searched in wall time; `ActiveWindow` is the
same window as instants, across the zone's offset changes (`zones.Timeline`).

A slot is kept when its own wall time is inside the window (`ActiveHours.contains`), nothing
more: a window edge in a spring-forward gap opens (or closes) at the first instant after the
gap, and wall times repeated by a fall-back are inside (or outside) the window on both passes.

To skip a closed stretch the schedule search needs the next (previous) instant at which the
window is open; between two offset changes wall time is UTC plus a constant, so that is the
wall-time answer of `ActiveHours` shifted back, unless an offset change comes first.
Instants are naive UTC datetimes.
"""

import re
from datetime import datetime, time, timedelta
from typing import Annotated, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from natscron_shared.timing.zones import Timeline

_TICK = timedelta(microseconds=1)
WALL_TIME = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?$"


def _wall_text(value: object) -> object:
    """A wall time as `HH:MM[:SS[.ffffff]]` text (or a `time` without a zone): pydantic would
    also read seconds since midnight, or an offset, which makes a time no wall time and
    breaks comparing it with the slots' wall times."""
    if isinstance(value, time) and value.tzinfo is None:
        return value
    if isinstance(value, str) and re.match(WALL_TIME, value):
        return value
    raise ValueError("must be a wall time HH:MM or HH:MM:SS, without an offset")


WallTime = Annotated[
    time,
    BeforeValidator(_wall_text),
    WithJsonSchema({"type": "string", "pattern": WALL_TIME}),
]


class ActiveHours(BaseModel):
    """A daily window, in the schedule's time zone, outside which slots are skipped.

    `end` before `start` means the window crosses midnight (22:00-06:00).
    Weekdays are ISO numbers of the day the window starts on: 1 = Monday ... 7 = Sunday.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: WallTime
    end: WallTime
    weekdays: tuple[Annotated[int, Field(ge=1, le=7)], ...] = Field(
        default=(1, 2, 3, 4, 5, 6, 7), min_length=1
    )

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if self.start == self.end:
            raise ValueError("active_hours start and end are equal: the window would be empty")
        return self

    def contains(self, local: datetime) -> bool:
        moment = local.time().replace(tzinfo=None)
        if self.start <= self.end:
            return self.start <= moment < self.end and local.isoweekday() in self.weekdays
        if moment >= self.start:
            return local.isoweekday() in self.weekdays
        if moment < self.end:
            return (local.isoweekday() - 2) % 7 + 1 in self.weekdays
        return False

    def next_opening(self, local: datetime) -> datetime:
        """The first moment after `local` (wall time in its zone) at which a window opens."""
        for offset in range(8):
            day = local.date() + timedelta(days=offset)
            opening = datetime.combine(day, self.start, tzinfo=local.tzinfo)
            if opening > local and day.isoweekday() in self.weekdays:
                return opening
        raise AssertionError("a week always has an opening: weekdays is not empty")

    def last_closing(self, local: datetime) -> datetime:
        """The last moment at or before `local` at which a window closed."""
        overnight = timedelta(days=1 if self.end < self.start else 0)
        for offset in range(9):
            day = local.date() - timedelta(days=offset)
            closing = datetime.combine(day + overnight, self.end, tzinfo=local.tzinfo)
            if closing <= local and day.isoweekday() in self.weekdays:
                return closing
        raise AssertionError("a week always has a closing: weekdays is not empty")


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
