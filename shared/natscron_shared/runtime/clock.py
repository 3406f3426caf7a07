"""Time as a dependency: services read it from a Clock, tests move a ManualClock."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    async def sleep_until(self, when: datetime) -> None:
        """Return once `now() >= when` (may return early if cancelled)."""
        ...


WAKE_EARLY_SECONDS = 0.001
"""The event loop's timers wake up to a millisecond late (epoll waits in whole
milliseconds, rounded up), so a sleep ends this much early and yields to the loop until
its time: a slot's run requests go out within tens of microseconds of it."""


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, when: datetime) -> None:
        """Yields without sleeping only in the last `WAKE_EARLY_SECONDS`, also when the
        wall clock is set back meanwhile."""
        while (delay := (when - self.now()).total_seconds()) > 0:  # noqa: ASYNC110 - a time
            await asyncio.sleep(max(0.0, delay - WAKE_EARLY_SECONDS))


class ManualClock:
    """A clock that only moves when told to; sleepers wake when it passes their time."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start")
        self._now = start.astimezone(UTC)
        self._moved = asyncio.Condition()

    def now(self) -> datetime:
        return self._now

    async def sleep_until(self, when: datetime) -> None:
        async with self._moved:
            await self._moved.wait_for(lambda: self._now >= when)

    async def advance(self, delta: timedelta) -> None:
        await self.move_to(self._now + delta)

    async def move_to(self, when: datetime) -> None:
        async with self._moved:
            self._now = when.astimezone(UTC)
            self._moved.notify_all()
