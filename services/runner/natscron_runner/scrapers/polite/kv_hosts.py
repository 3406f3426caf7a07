"""Polite fetching shared by every runner, through three KV buckets (see each module):
`host_slots` (requests in flight), `host_pace` (the rate), `host_backoff` (429/503)."""

from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Self

from nats.js import JetStreamContext

from natscron_runner.scrapers.polite.hosts import Host
from natscron_runner.scrapers.polite.kv_backoff import BackoffBook
from natscron_runner.scrapers.polite.kv_pace import KvPace
from natscron_runner.scrapers.polite.kv_slots import KvSlots
from natscron_shared.contract import names
from natscron_shared.nats.kv_watch import bucket_ttl
from natscron_shared.runtime.clock import Clock


class KvHosts:
    """A `HostCoordinator` over NATS KV. `backoffs.follow` must run (the runner supervises
    it) for backoffs other runners announce to reach this one."""

    def __init__(self, slots: KvSlots, pace: KvPace, backoffs: BackoffBook) -> None:
        self._slots = slots
        self._pace = pace
        self.backoffs = backoffs

    @classmethod
    async def open(cls, js: JetStreamContext, runner_id: str, clock: Clock) -> Self:
        slots_bucket = await js.key_value(names.KV_HOST_SLOTS)
        ttl = await bucket_ttl(
            slots_bucket, names.KV_HOST_SLOTS, "a dead runner's request slots would never free"
        )
        return cls(
            KvSlots(js, slots_bucket, ttl, runner_id, clock),
            KvPace(await js.key_value(names.KV_HOST_PACE), clock),
            BackoffBook(await js.key_value(names.KV_HOST_BACKOFF), clock, runner_id),
        )

    def slot(self, host: Host, limit: int) -> AbstractAsyncContextManager[None]:
        return self._slots.slot(host, limit)

    async def turn(self, host: Host, interval_seconds: float) -> datetime:
        return await self._pace.turn(host, interval_seconds)

    def backoff_until(self, host: Host) -> datetime | None:
        return self.backoffs.until(host)

    async def back_off(
        self, host: Host, status: int, retry_after: str | None, cap_seconds: float
    ) -> datetime:
        return await self.backoffs.announce(host, status, retry_after, cap_seconds)

    async def recovered(self, host: Host) -> None:
        await self.backoffs.clear(host)
