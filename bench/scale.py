"""The ticker at scale: how long N schedules take to load, and the memory they cost.

N schedules are put into KV `scheduled_jobs` (daily crons in assorted zones, not due during
the run), the last one put being a probe firing every second. Then one ticker process
starts. Reported per N:

- loaded: ticker start -> its `/readyz` (the KV watches delivered every spec and state);
- first fire of the schedule put last: ticker start -> the probe's first run request
  stored (JetStream's time);
- takeover: the ticker's own `natscron_ticker_takeover_seconds` (every job on the agenda);
- memory: the ticker's resident set (VmRSS) with N schedules minus its resident set with
  one, divided by N.

Run: `.venv/bin/python bench/scale.py --schedules 100000 1000000`.
"""

import argparse
import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.failover import ProbeSlots, daily, probe, put_all
from bench.processes import provisioned_stack

SETTLE_SECONDS = 5.0
READY_SECONDS = 600.0
"""Ticker start -> `/readyz`, allowed generously: the issue's target for a million
schedules is 30 s."""
FIRST_FIRE_SECONDS = 900.0


def resident_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


async def one_run(count: int) -> dict[str, float]:
    async with provisioned_stack() as (stack, js):
        await put_all(stack, daily(count - 1, datetime.now(UTC)))
        # Alone, once every other spec is stored: the probe is the schedule put last.
        await put_all(stack, [probe()])
        slots = ProbeSlots(js)
        started_wall, started = datetime.now(UTC), time.monotonic()
        ticker = await stack.start_service(
            "ticker", "ticker", {"NATSCRON_TICKER_ID": "a"}, ready_within=READY_SECONDS
        )
        loaded = time.monotonic() - started
        first = await slots.first_after(started_wall, within=FIRST_FIRE_SECONDS)
        await asyncio.sleep(SETTLE_SECONDS)
        scrape = await ticker.scrape()
        takeover = scrape.gauges.get("natscron_ticker_takeover_seconds", -1.0) if scrape else -1
        return {
            "loaded_s": loaded,
            "first_fire_s": (first - started_wall).total_seconds() if first else -1.0,
            "takeover_s": takeover,
            "rss_kib": float(resident_kib(ticker.pid)),
        }


async def bench(counts: list[int]) -> None:
    baseline = await one_run(1)
    print(f"baseline: one schedule, ticker resident {baseline['rss_kib'] / 1024:.0f} MiB")
    print(
        f"{'schedules':>10} {'loaded s':>9} {'first fire s':>13}"
        f" {'takeover s':>11} {'B/schedule':>11}"
    )
    for count in counts:
        row = await one_run(count)
        per_schedule = (row["rss_kib"] - baseline["rss_kib"]) * 1024 / count
        print(
            f"{count:>10,} {row['loaded_s']:>9.1f} {row['first_fire_s']:>13.1f}"
            f" {row['takeover_s']:>11.2f} {per_schedule:>11.0f}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--schedules", type=int, nargs="+", default=[100_000])
    asyncio.run(bench(parser.parse_args().schedules))


if __name__ == "__main__":
    main()
