"""Ticker failover: SIGKILL of the leading ticker process, with N schedules loaded.

Two ticker processes (`natscron ticker`, each its own process) follow N schedules: one
probe firing every second and N - 1 daily ones in assorted zones that are not due during
the run. Once the first ticker leads and fires the probe, it is killed with SIGKILL.
Reported per run:

- failover: SIGKILL -> the first run request the standby stored (JetStream's own time);
- first fire: the first ticker's lease -> its first probe run request (its takeover with
  nothing to take over from, so every schedule is adopted cold);
- the probe's slots around the kill: every second fired once, none missing
  (`Nats-Msg-Id` is the job id, so a slot fired twice is stored once and shows as
  "doubled" only in the ticker's duplicate counter).

Run: `.venv/bin/python bench/failover.py --schedules 1 10000 100000 --repeat 2`.
"""

import argparse
import asyncio
import itertools
import json
import signal
import statistics
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError

from bench.processes import Stack, provisioned_stack
from natscron_shared.contract import names
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.nats.connection import to_json
from natscron_ticker.bulk_publish import BulkPublisher, Prepared, Stored

ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Sydney")
PROBE = "probe"
PUT_CHUNK = 20_000
"""Specs sent at once, every one acked before the next chunk is sent."""
AFTER_KILL_SECONDS = 6


def probe() -> ScheduledJob:
    """The schedule firing every second."""
    return ScheduledJob(
        scheduled_job_id=PROBE,
        name=PROBE,
        cron_expression="* * * * * *",
        scraper="noop",
        catchup="all",  # every slot missed during the failover must still fire
    )


def daily(count: int, now: datetime) -> Iterator[ScheduledJob]:
    """`count` daily schedules at an hour that is not now in any zone's day, built one at
    a time (a million parsed models would take several GiB)."""
    hour = (now.hour + 12) % 24
    for index in range(count):
        yield ScheduledJob(
            scheduled_job_id=f"daily-{index:07d}",
            name=f"daily {index}",
            cron_expression=f"{index % 60} {hour} * * *",
            timezone="UTC" if index % 2 else ZONES[index % len(ZONES)],
            scraper="noop",
        )


def schedules(count: int, now: datetime) -> Iterator[ScheduledJob]:
    """The probe, then `count - 1` daily schedules."""
    yield probe()
    yield from daily(count - 1, now)


async def put_all(stack: Stack, specs: Iterable[ScheduledJob]) -> int:
    """Put every spec into the stack's KV `scheduled_jobs`, in order, and return how many.

    A KV put is a JetStream publish to `$KV.<bucket>.<key>`: the specs go out through a
    `BulkPublisher` on a connection of its own, `PUT_CHUNK` at a time, each chunk acked in
    full before the next is encoded (`specs` may be a generator: only one chunk is held).
    Raises if any put was not stored."""
    assert stack.nats is not None, "start the stack's servers first"
    nc = Client()
    await nc.connect(stack.nats.url)
    publisher = BulkPublisher(nc, lambda stream, outcome, count: None)
    prefix = f"$KV.{names.KV_SCHEDULED_JOBS}."
    iterator = iter(specs)
    put = 0
    await publisher.start()
    try:
        while chunk := [
            Prepared(prefix + spec.scheduled_job_id, to_json(spec))
            for spec in itertools.islice(iterator, PUT_CHUNK)
        ]:
            outcomes = await publisher.publish_all(chunk)
            failed = [outcome for outcome in outcomes if not isinstance(outcome, Stored)]
            if failed:
                raise RuntimeError(
                    f"{len(failed):,} of {len(chunk):,} KV puts not stored (after {put:,}"
                    f" stored); first: {failed[0]!r}"
                )
            put += len(chunk)
    finally:
        await publisher.stop()
        await nc.close()
    return put


async def holder(js: JetStreamContext) -> bytes | None:
    bucket = await js.key_value(names.KV_TICKER_LEADER)
    try:
        return (await bucket.get(names.LEADER_KEY)).value
    except KeyNotFoundError:
        return None


async def leader_is(js: JetStreamContext, ticker: bytes, within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await holder(js) == ticker:
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"ticker {ticker!r} did not lead within {within:.0f} s")


class ProbeSlots:
    """The probe's run requests in the JOBS stream, read by sequence (no consumer: the
    stream is a work queue whose lanes the runners' consumers already cover)."""

    def __init__(self, js: JetStreamContext) -> None:
        self._js = js
        self._next_seq = 1
        self.stored: list[tuple[datetime, datetime]] = []
        """(slot, stored at) of each probe request, in stream order."""

    async def read(self) -> None:
        info = await self._js.stream_info(names.STREAM_JOBS)
        while self._next_seq <= info.state.last_seq:
            message = await self._js.get_msg(names.STREAM_JOBS, self._next_seq)
            self._next_seq += 1
            request = json.loads(message.data or b"{}")
            if request.get("scheduled_job_id") == PROBE and message.time is not None:
                slot = datetime.fromisoformat(request["scheduled_for"])
                self.stored.append((slot, message.time))

    async def first_after(self, moment: datetime, within: float) -> datetime | None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            await self.read()
            later = [stored for _, stored in self.stored if stored > moment]
            if later:
                return min(later)
            await asyncio.sleep(0.02)
        return None


async def one_run(count: int) -> dict[str, float | int | str]:
    async with provisioned_stack() as (stack, js):
        started = time.monotonic()
        await put_all(stack, schedules(count, datetime.now(UTC)))
        put_seconds = time.monotonic() - started
        slots = ProbeSlots(js)

        first = await stack.start_service("ticker-a", "ticker", {"NATSCRON_TICKER_ID": "a"})
        await leader_is(js, b"a", within=120)
        led_at = datetime.now(UTC)
        first_fire = await slots.first_after(led_at, within=600)
        await stack.start_service("ticker-b", "ticker", {"NATSCRON_TICKER_ID": "b"})
        # Ready means the standby has loaded everything; kill right after a probe fires.
        await slots.first_after(datetime.now(UTC), within=30)

        first.process.send_signal(signal.SIGKILL)
        await first.process.wait()
        killed_at = datetime.now(UTC)
        taken = await slots.first_after(killed_at, within=120)
        await asyncio.sleep(AFTER_KILL_SECONDS)
        await slots.read()
        probe_slots = [slot for slot, _ in slots.stored]
        span = [s for s in probe_slots if s >= probe_slots[0] + timedelta(seconds=1)]
        expected = int((span[-1] - span[0]).total_seconds()) + 1 if span else 0
        return {
            "schedules": count,
            "put_s": round(put_seconds, 1),
            "first_fire_s": round((first_fire - led_at).total_seconds(), 2)
            if first_fire
            else "none",
            "failover_s": round((taken - killed_at).total_seconds(), 2) if taken else "none",
            "probe_slots": len(span),
            "missing": expected - len(set(span)),
            "doubled": len(span) - len(set(span)),
        }


async def bench(counts: list[int], repeat: int) -> None:
    print(
        f"{'schedules':>10} {'put s':>7} {'first fire s':>13} {'failover s':>11}"
        f" {'probe slots':>12} {'missing':>8} {'doubled':>8}",
        flush=True,
    )
    for count in counts:
        failovers: list[float] = []
        for _ in range(repeat):
            row = await one_run(count)
            print(
                f"{row['schedules']:>10,} {row['put_s']:>7} {row['first_fire_s']:>13}"
                f" {row['failover_s']:>11} {row['probe_slots']:>12} {row['missing']:>8}"
                f" {row['doubled']:>8}",
                flush=True,
            )
            if isinstance(row["failover_s"], float):
                failovers.append(row["failover_s"])
        if failovers:
            print(
                f"  failover range {min(failovers)}-{max(failovers)} s,"
                f" median {statistics.median(failovers)} s",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--schedules", type=int, nargs="+", default=[1, 10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=2)
    arguments = parser.parse_args()
    asyncio.run(bench(arguments.schedules, arguments.repeat))


if __name__ == "__main__":
    main()
