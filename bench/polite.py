"""The cost of polite fetching per request: the same page fetched N times in a row,
bare (httpx alone) and through the polite gate with its state in one process (`local`),
shared through NATS KV (`kv`: a request slot taken and given back), and shared with a
rate limit too high to wait for (`kv+rate`: the pace's read and compare-and-set as well).

The site is the demo listings site on 127.0.0.1 (one request per connection, as
httpx then opens one per request in every variant); nats-server is a fresh embedded one,
provisioned. robots.txt is fetched once per variant, before the measured requests. The
variants take turns in rounds, so drift of the machine's load hits them alike.

Run: `.venv/bin/python bench/polite.py --requests 2000 --rounds 10`
"""

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from nats.aio.client import Client

from natscron.demo import DemoListingsSite
from natscron.embedded import start_nats
from natscron.provisioning.provision import provision
from natscron_runner.scrapers.page_fetch import fetch_page, polite_client
from natscron_runner.scrapers.polite import FetchRules, Politeness, PoliteSettings
from natscron_runner.scrapers.polite.kv_hosts import KvHosts
from natscron_runner.scrapers.polite.local_hosts import LocalHosts
from natscron_shared.nats.jetstream_layout import jetstream_layout
from natscron_shared.runtime.clock import SystemClock

PATH = "/listings/austin-tx?type=for_sale&page=1"
RULES = FetchRules(user_agent="natscron-bench/1")
FAST_RATE = FetchRules(user_agent="natscron-bench/1", min_interval_seconds=0.00001)

Fetch = Callable[[], Awaitable[None]]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def variants(url: str, nc: Client) -> dict[str, Fetch]:
    hosts = await KvHosts.open(nc.jetstream(), "bench", SystemClock())
    local = Politeness(LocalHosts(), PoliteSettings(), SystemClock())
    shared = Politeness(hosts, PoliteSettings(), SystemClock())
    client = polite_client(RULES, 10.0)

    async def bare() -> None:
        (await client.get(url)).raise_for_status()

    def gated(polite: Politeness, rules: FetchRules) -> Fetch:
        async def fetch() -> None:
            fetched = await fetch_page(client, polite, url, rules)
            assert fetched.status == 200, fetched.status

        return fetch

    return {
        "bare": bare,
        "local": gated(local, RULES),
        "kv": gated(shared, RULES),
        "kv+rate": gated(shared, FAST_RATE),
    }


async def main(requests: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        nats = await start_nats(Path(folder))
        site = DemoListingsSite()
        await site.start()
        nc = Client()
        try:
            await nc.connect(nats.url)
            await provision(nc.jetstream(), jetstream_layout(1, 10.0))
            fetches = await variants(site.url + PATH, nc)
            timings: dict[str, list[float]] = {name: [] for name in fetches}
            for fetch in fetches.values():
                await fetch()  # robots.txt, connections, caches
            for _ in range(rounds):
                for name, fetch in fetches.items():
                    for _ in range(requests // rounds):
                        started = time.perf_counter()
                        await fetch()
                        timings[name].append(time.perf_counter() - started)
        finally:
            await nc.close()
            await site.stop()
            await nats.stop()
    base = statistics.mean(timings["bare"])
    print(f"{requests} requests per variant, in {rounds} rounds; per request (ms):")
    for name, values in timings.items():
        mean = statistics.mean(values)
        print(
            f"  {name:8} mean {mean * 1000:6.3f}  p50 {percentile(values, 0.5) * 1000:6.3f}"
            f"  p99 {percentile(values, 0.99) * 1000:6.3f}  overhead {(mean - base) * 1000:+6.3f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=10)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.requests, arguments.rounds))
