"""What polite fetching needs shared per host: request slots, a pace, and backoffs.

`LocalHosts` keeps them in one process (a scraper run outside a runner, tests, the
benchmark's baseline); `KvHosts` shares them between every runner through NATS KV.
"""

from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol

from natscron_runner.scrapers.polite.hosts import Host


class HostCoordinator(Protocol):
    def slot(self, host: Host, limit: int) -> AbstractAsyncContextManager[None]:
        """Hold one of the host's `limit` request slots (waiting for one) while inside."""
        ...

    async def turn(self, host: Host, interval_seconds: float) -> datetime:
        """Reserve the host's next start, at least `interval_seconds` after the previous
        one reserved: returns when it is (now or later); the caller waits until then."""
        ...

    def backoff_until(self, host: Host) -> datetime | None:
        """Until when the host is left alone after a 429/503, if it was told so."""
        ...

    async def back_off(
        self, host: Host, status: int, retry_after: str | None, cap_seconds: float
    ) -> datetime:
        """The host answered 429/503: announce when it may be asked again, and return it."""
        ...

    async def recovered(self, host: Host) -> None:
        """The host answered normally: its backoff (if any) no longer doubles."""
        ...
