"""The ticker lease on a real nats-server: takeover without waiting for the TTL when the
holder is gone, and the two faults of a lease write that is slow or lands late."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue
from prometheus_client import CollectorRegistry

from natscron_shared.contract.names import LEADER_KEY
from natscron_shared.contract.presence import presence_subject
from natscron_shared.nats.request_reply import MicroService
from natscron_ticker.lease import LeaderLease
from tests.servers import Server
from tests.waiting import eventually

LONG_TTL = 30.0
"""Far longer than any wait below: a takeover that happens waited for no TTL."""


class LateWrites:
    """A bucket whose chosen updates reach the server and then report a timeout, or
    stall before reaching it, as nats-py does across a reconnect."""

    def __init__(self, bucket: KeyValue) -> None:
        self._bucket = bucket
        self.land_then_time_out = 0
        self.stall_seconds = 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._bucket, name)

    async def update(self, key: str, value: bytes, last: int | None = None) -> int:
        write = asyncio.ensure_future(self._land(key, value, last, self.stall_seconds))
        write.add_done_callback(lambda done: done.cancelled() or done.exception())
        revision = await asyncio.shield(write)  # the caller giving up does not stop it
        if self.land_then_time_out:
            self.land_then_time_out -= 1
            raise TimeoutError("nats: timeout")
        return revision

    async def _land(self, key: str, value: bytes, last: int | None, stall: float) -> int:
        await asyncio.sleep(stall)
        return await self._bucket.update(key, value, last=last)


@pytest.fixture
async def connect(nats_server: Server) -> AsyncIterator[Callable[[], Awaitable[Client]]]:
    clients: list[Client] = []

    async def new_client() -> Client:
        client = Client()
        await client.connect(nats_server.url)
        clients.append(client)
        return client

    yield new_client
    for client in clients:
        with contextlib.suppress(Exception):
            await client.close()


async def lease_bucket(nc: Client) -> KeyValue:
    return await nc.jetstream().create_key_value(bucket="lease_test", ttl=LONG_TTL, history=1)


async def holder_of(bucket: KeyValue) -> bytes | None:
    try:
        return (await bucket.get(LEADER_KEY)).value
    except KeyNotFoundError:
        return None


class Running:
    """Leases running as tasks, cancelled at the end."""

    def __init__(self) -> None:
        self._tasks: list[asyncio.Task[None]] = []
        self._presences: list[MicroService] = []

    async def start(self, lease: LeaderLease, nc: Client) -> LeaderLease:
        """Run the lease, and answer its presence subject as the ticker service does."""
        presence = MicroService(
            "natscron-ticker", "presence", [lease.presence_endpoint()], CollectorRegistry()
        )
        await presence.start(nc)
        self._presences.append(presence)
        self._tasks.append(asyncio.create_task(lease.run()))
        return lease

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for presence in self._presences:
            await presence.stop(0)


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    leases = Running()
    yield leases
    await leases.stop()


async def test_a_standby_takes_over_from_a_vanished_holder_long_before_the_ttl(
    connect: Callable[[], Awaitable[Client]], running: Running
) -> None:
    doomed_nc, standby_nc = await connect(), await connect()
    bucket = await lease_bucket(doomed_nc)
    doomed = await running.start(LeaderLease(bucket, doomed_nc, "doomed", LONG_TTL), doomed_nc)
    await asyncio.wait_for(doomed.leading.wait(), 10)
    probed = asyncio.Event()

    async def probe_seen(_: Msg) -> None:
        probed.set()

    # Listen in on the holder's presence subject until the standby has asked once.
    listener = await standby_nc.subscribe(presence_subject("doomed"), cb=probe_seen)
    standby = await running.start(
        LeaderLease(await lease_bucket(standby_nc), standby_nc, "standby", LONG_TTL), standby_nc
    )
    await asyncio.wait_for(probed.wait(), 10)
    await listener.unsubscribe()
    assert not standby.is_leader, "took the lease of a holder that answers"

    await doomed_nc.close()  # as a SIGKILL does: the connection is gone, the key stays
    gone_at = time.monotonic()
    await asyncio.wait_for(standby.leading.wait(), 10)
    assert time.monotonic() - gone_at < 3.0, "the standby waited for the TTL"
    assert standby.is_leader
    assert await holder_of(await lease_bucket(standby_nc)) == b"standby"


async def test_a_live_holder_keeps_its_lease(
    connect: Callable[[], Awaitable[Client]], running: Running
) -> None:
    holder_nc, standby_nc = await connect(), await connect()
    holder = await running.start(
        LeaderLease(await lease_bucket(holder_nc), holder_nc, "holder", LONG_TTL), holder_nc
    )
    await asyncio.wait_for(holder.leading.wait(), 10)
    standby = await running.start(
        LeaderLease(await lease_bucket(standby_nc), standby_nc, "standby", LONG_TTL), standby_nc
    )
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(standby.leading.wait(), 3)
    assert holder.is_leader


async def test_a_renewal_that_landed_but_timed_out_keeps_the_lease(
    connect: Callable[[], Awaitable[Client]], running: Running
) -> None:
    nc = await connect()
    bucket = LateWrites(await lease_bucket(nc))
    changes: list[bool] = []
    lease = await running.start(LeaderLease(bucket, nc, "holder", 2.0, changes.append), nc)  # type: ignore[arg-type]
    await asyncio.wait_for(lease.leading.wait(), 10)
    bucket.land_then_time_out = 1

    async def late_writes_left() -> int:
        return bucket.land_then_time_out

    await eventually(late_writes_left, lambda left: left == 0, what="a renewal that times out")
    after_late = (await bucket.get(LEADER_KEY)).revision or 0
    await eventually(
        lambda: bucket.get(LEADER_KEY),
        lambda entry: (entry.revision or 0) > after_late,
        what="a renewal on the revision the late write made",
    )
    assert changes == [True], "the holder gave its lease up over its own late write"
    assert lease.is_leader


async def test_a_late_write_of_a_lease_given_up_does_not_keep_it(
    connect: Callable[[], Awaitable[Client]], running: Running
) -> None:
    """The holder stalls past its trust window, then its write lands: it must not keep a
    lease it stopped trusting, or no ticker leads until the TTL."""
    holder_nc, standby_nc = await connect(), await connect()
    bucket = LateWrites(await lease_bucket(holder_nc))
    ttl = 4.0
    holder = await running.start(LeaderLease(bucket, holder_nc, "holder", ttl), holder_nc)  # type: ignore[arg-type]
    await asyncio.wait_for(holder.leading.wait(), 10)
    bucket.stall_seconds = ttl  # beyond the trust window (ttl / 2), short of LONG_TTL
    await asyncio.wait_for(holder.standing_by.wait(), ttl)
    assert not holder.is_leader

    standby = await running.start(
        LeaderLease(await lease_bucket(standby_nc), standby_nc, "standby", LONG_TTL), standby_nc
    )
    bucket.stall_seconds = 0.0

    async def leaders_now() -> list[bool]:
        return [holder.is_leader, standby.is_leader]

    leaders = await eventually(
        leaders_now,
        any,
        within=ttl * 2,
        what="a leader after the late write",
    )
    assert leaders.count(True) == 1
    held_by = await holder_of(await lease_bucket(standby_nc))
    assert held_by == (b"holder" if holder.is_leader else b"standby")


async def test_release_lets_a_standby_lead_at_once(
    connect: Callable[[], Awaitable[Client]], running: Running
) -> None:
    holder_nc, standby_nc = await connect(), await connect()
    holder = LeaderLease(await lease_bucket(holder_nc), holder_nc, "holder", LONG_TTL)
    holding = asyncio.create_task(holder.run())
    await asyncio.wait_for(holder.leading.wait(), 10)
    standby = await running.start(
        LeaderLease(await lease_bucket(standby_nc), standby_nc, "standby", LONG_TTL), standby_nc
    )
    holding.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await holding
    await holder.release()
    assert not holder.is_leader
    await asyncio.wait_for(standby.leading.wait(), 3)
    assert await holder_of(await lease_bucket(standby_nc)) == b"standby"
