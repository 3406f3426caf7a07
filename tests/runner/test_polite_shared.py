"""Polite fetching shared through NATS KV by two "runners" (two connections, each with its
own `KvHosts`, as two runner processes have), against a site that logs every request."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from nats.aio.client import Client
from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError

from natscron_runner.scrapers.polite import FetchRules, Politeness, PoliteSettings
from natscron_runner.scrapers.polite.hosts import Host
from natscron_runner.scrapers.polite.kv_hosts import KvHosts
from natscron_shared.contract import names
from natscron_shared.nats.jetstream_layout import kv_stream_name
from natscron_shared.runtime.clock import SystemClock
from tests.runner.sites import Reply, Site, serving
from tests.servers import Server
from tests.waiting import eventually

pytestmark = pytest.mark.integration

SLOW = Reply(body="<p>slow</p>", delay=0.2)
RULES = FetchRules(user_agent="natscron-test/1", obey_robots=False)
ARRIVAL_JITTER_SECONDS = 0.1
"""Between a request's start and its arrival at the site (connecting, the loop's other
work, this 2-core machine's load): the limiter spaces starts, the site sees arrivals."""


class NotedHosts(KvHosts):
    """A runner's `KvHosts` noting every start it reserves under a rate limit: what the
    limit spaces. When its request is let go also depends on how soon the waiting task
    resumes after that time: on this loaded 2-core machine, up to a few hundred
    milliseconds later, while the next request may resume on time."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reserved: list[datetime] = []

    async def turn(self, host: Host, interval_seconds: float) -> datetime:
        start = await super().turn(host, interval_seconds)
        self.reserved.append(start)
        return start


@contextlib.asynccontextmanager
async def runner_hosts(server: Server, name: str) -> AsyncIterator[NotedHosts]:
    """What a runner builds at start: its own connection, KvHosts and backoff watch."""
    client = Client()
    await client.connect(server.url)
    hosts = await NotedHosts.open(client.jetstream(), name, SystemClock())
    following = asyncio.create_task(hosts.backoffs.follow(hosts.backoffs.bucket))
    try:
        await asyncio.wait_for(hosts.backoffs.loaded.wait(), 5)
        yield hosts
    finally:
        following.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await following
        await client.close()


@contextlib.asynccontextmanager
async def runner_politeness(
    server: Server, name: str, settings: PoliteSettings
) -> AsyncIterator[Politeness]:
    async with runner_hosts(server, name) as hosts:
        yield Politeness(hosts, settings, SystemClock())


async def fetch(
    polite: Politeness,
    site: Site,
    path: str,
    rules: FetchRules = RULES,
    let_go: list[datetime] | None = None,
) -> int:
    async with polite.fetching(site.url + path, rules) as permit:
        if let_go is not None:
            let_go.append(SystemClock().now())
        reader, writer = await asyncio.open_connection("127.0.0.1", site.port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await writer.drain()
        status = int((await reader.read()).split(b" ", 2)[1])
        writer.close()
        retry_after = "1" if status == 429 else None
        permit.report(status, retry_after)
    return status


async def test_two_runners_together_keep_two_requests_in_flight_per_host(
    nats_server: Server,
) -> None:
    settings = PoliteSettings(max_in_flight=2)
    async with (
        runner_politeness(nats_server, "runner-a", settings) as a,
        runner_politeness(nats_server, "runner-b", settings) as b,
        serving(lambda target: SLOW) as site,
    ):
        await asyncio.gather(*(fetch(p, site, f"/{n}") for n in range(6) for p in (a, b)))
    assert len(site.hits) == 12
    assert max(hit.in_flight for hit in site.hits) == 2
    assert site.hits[-1].at - site.hits[0].at >= 0.2 * (12 / 2 - 1) - 0.05


async def test_a_rate_limit_spaces_the_requests_of_both_runners(nats_server: Server) -> None:
    settings = PoliteSettings(max_in_flight=2, max_requests_per_second=5)
    rules = FetchRules(user_agent="natscron-test/1", obey_robots=False, min_interval_seconds=0.2)
    async with (
        runner_hosts(nats_server, "runner-a") as hosts_a,
        runner_hosts(nats_server, "runner-b") as hosts_b,
        serving(lambda target: Reply(body="ok")) as site,
    ):
        a = Politeness(hosts_a, settings, SystemClock())
        b = Politeness(hosts_b, settings, SystemClock())
        let_go: list[datetime] = []
        await asyncio.gather(
            *(fetch(p, site, f"/{n}", rules, let_go) for n in range(4) for p in (a, b))
        )
    turns = sorted(hosts_a.reserved + hosts_b.reserved)
    assert len(turns) == len(let_go) == 8
    assert min(spacing(turns)) >= timedelta(seconds=0.2), "each start an interval after the last"
    assert none_before_its_turn(turns, let_go), "a request was let go before its turn"
    arrivals = [hit.at for hit in site.hits]
    assert min(_gaps(arrivals)) >= 0.2 - ARRIVAL_JITTER_SECONDS, _gaps(arrivals)


def spacing(starts: list[datetime]) -> list[timedelta]:
    """Between each reserved start and the next (`starts` sorted)."""
    return [later - earlier for earlier, later in zip(starts, starts[1:], strict=False)]


def none_before_its_turn(turns: list[datetime], let_go: list[datetime]) -> bool:
    """Whether no request was let go before its turn, as far as unpaired times show: if
    none was, the n-th earliest let go is never before the n-th earliest turn (sorted)."""
    return all(went >= turn for turn, went in zip(turns, sorted(let_go), strict=True))


def _gaps(times: list[float]) -> list[float]:
    return [later - earlier for earlier, later in zip(times, times[1:], strict=False)]


async def test_a_429_one_runner_gets_holds_the_other_off_the_host(nats_server: Server) -> None:
    answers = [Reply(429, "slow down")]

    def route(target: str) -> Reply:
        return answers.pop(0) if answers else Reply(body="ok")

    settings = PoliteSettings()
    async with (
        runner_politeness(nats_server, "runner-a", settings) as a,
        runner_politeness(nats_server, "runner-b", settings) as b,
        serving(route) as site,
    ):
        assert await fetch(a, site, "/first") == 429
        told = time.monotonic()
        host = Host.of(site.url)

        async def backoff_reached_b() -> object:
            return b.hosts.backoff_until(host)

        await eventually(backoff_reached_b, what="the backoff watched by runner-b")
        assert await fetch(b, site, "/second") == 200
        assert site.hits[1].at - told >= 0.85, "runner-b waited for the Retry-After"
        assert await fetch(a, site, "/third") == 200


async def test_a_dead_runners_slots_lapse_with_the_buckets_ttl(
    nats_server: Server, nc: Client
) -> None:
    js = nc.jetstream()
    stream = kv_stream_name(names.KV_HOST_SLOTS)
    config: StreamConfig = (await js.stream_info(stream)).config
    config.max_age = 1.0
    config.duplicate_window = 1.0
    await js.update_stream(config)
    settings = PoliteSettings(max_in_flight=1)
    async with serving(lambda target: Reply(body="ok")) as site:
        async with runner_politeness(nats_server, "doomed", settings) as doomed:
            holding = asyncio.create_task(_hold_forever(doomed, site))
            await eventually(lambda: _held(nc), what="the doomed runner holding the slot")
        holding.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await holding
        async with runner_politeness(nats_server, "survivor", settings) as survivor:
            started = time.monotonic()
            assert await fetch(survivor, site, "/after") == 200
            waited = time.monotonic() - started
    assert 0.5 <= waited <= 5.0, f"took the slot after {waited:.2f}s"


async def _held(nc: Client) -> list[str]:
    bucket = await nc.jetstream().key_value(names.KV_HOST_SLOTS)
    try:
        return await bucket.keys()
    except NotFoundError:
        return []


async def _hold_forever(polite: Politeness, site: Site) -> None:
    async with polite.fetching(site.url + "/held", RULES):
        await asyncio.Event().wait()
