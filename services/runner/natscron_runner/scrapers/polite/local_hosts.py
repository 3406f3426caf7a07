"""Host slots, pace and backoffs within one process: no NATS, nothing shared."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

from natscron_runner.scrapers.polite.backoff import HostBackoff, next_backoff
from natscron_runner.scrapers.polite.hosts import Host
from natscron_shared.runtime.clock import Clock, SystemClock


class LocalHosts:
    def __init__(self, clock: Clock | None = None, owner: str = "local") -> None:
        self._clock: Clock = clock or SystemClock()
        self._owner = owner
        self._slots: dict[Host, asyncio.Semaphore] = {}
        self._next_start: dict[Host, datetime] = {}
        self._backoffs: dict[Host, HostBackoff] = {}

    @contextlib.asynccontextmanager
    async def slot(self, host: Host, limit: int) -> AsyncIterator[None]:
        async with self._slots.setdefault(host, asyncio.Semaphore(limit)):
            yield

    async def turn(self, host: Host, interval_seconds: float) -> datetime:
        now = self._clock.now()
        start = max(now, self._next_start.get(host, now))
        self._next_start[host] = start + timedelta(seconds=interval_seconds)
        return start

    def backoff_until(self, host: Host) -> datetime | None:
        backoff = self._backoffs.get(host)
        return None if backoff is None else backoff.until

    async def back_off(
        self, host: Host, status: int, retry_after: str | None, cap_seconds: float
    ) -> datetime:
        backoff = next_backoff(
            self._backoffs.get(host),
            self._clock.now(),
            status,
            retry_after,
            cap_seconds,
            self._owner,
        )
        self._backoffs[host] = backoff
        return backoff.until

    async def recovered(self, host: Host) -> None:
        backoff = self._backoffs.get(host)
        if backoff is not None and backoff.until <= self._clock.now():
            del self._backoffs[host]
