"""A big burst and the schedules around it: does the burst hold up anyone else's slots?

One ticker process on a fresh stack (`bench.processes`), no runner, as in
bench/lateness.py: B daily 6-field schedules due at the same second (`--burst`, the
slot `--lead` seconds after loading began) and R schedules firing every second
(`--rate`). Lateness = JetStream's stored time of a run request minus its slot. Reported
for the every-second schedules per second, from `--before` seconds before the burst's
slot to `--after` seconds after it (the burst is prepared before its slot, and sent,
acked and followed up after it), and for the burst itself.

Run: `.venv/bin/python bench/burst_neighbours.py --burst 100000 --rate 500 --repeat 2`.
"""

import argparse
import asyncio
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from bench.lateness import (
    EVERY_SECOND,
    LEAD_TIMEOUT_SECONDS,
    in_chunks,
    last_seq,
    lateness_ms,
    natscron_slots,
    read_range,
    sleep_until,
    specs,
    wait_leader,
    whole_second_after,
)
from bench.processes import provisioned_stack
from natscron_shared.contract import names
from natscron_shared.nats.connection import to_json

BURST_PREFIX = "burst-"
RATE_PREFIX = "every-second-"


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    p50 = ordered[len(ordered) // 2]
    p99 = ordered[max(0, -(-len(ordered) * 99 // 100) - 1)]
    return f"{len(ordered):>7,} {p50:>8.1f} {p99:>8.1f} {ordered[-1]:>8.1f}"


async def run(arguments: argparse.Namespace) -> None:
    async with provisioned_stack() as (stack, js):
        bucket = await js.key_value(names.KV_SCHEDULED_JOBS)
        slot = whole_second_after(datetime.now(UTC) + timedelta(seconds=arguments.lead))
        daily = f"{slot.second} {slot.minute} {slot.hour} * * *"
        burst = [
            spec.model_copy(update={"scheduled_job_id": BURST_PREFIX + spec.scheduled_job_id})
            for spec in specs(arguments.burst, daily)
        ]
        rate = [
            spec.model_copy(update={"scheduled_job_id": RATE_PREFIX + spec.scheduled_job_id})
            for spec in specs(arguments.rate, EVERY_SECOND)
        ]
        await in_chunks(burst + rate, lambda spec: bucket.put(spec.scheduled_job_id, to_json(spec)))
        await stack.start_service("ticker", "ticker")
        await wait_leader(js, within=LEAD_TIMEOUT_SECONDS)
        await sleep_until(slot - timedelta(seconds=arguments.before + 1))
        first = await last_seq(js, names.STREAM_JOBS) + 1
        await sleep_until(slot + timedelta(seconds=arguments.after + 2))
        await stack.stop_services()
        stored = natscron_slots(
            await read_range(js, names.STREAM_JOBS, first, await last_seq(js, names.STREAM_JOBS))
        )
    neighbours: dict[float, list[float]] = defaultdict(list)
    burst_lateness = []
    for job, fired_slot, at in stored:
        offset = (fired_slot - slot).total_seconds()
        if job.startswith(BURST_PREFIX):
            burst_lateness.append(lateness_ms(at, fired_slot))
        elif -arguments.before <= offset <= arguments.after:
            neighbours[offset].append(lateness_ms(at, fired_slot))
    print(f"{'slot':>12} {'stored':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}", flush=True)
    for offset in sorted(neighbours):
        print(f"{f'burst {offset:+.0f} s':>12} {summary(neighbours[offset])}", flush=True)
    print(f"{'the burst':>12} {summary(burst_lateness)}", flush=True)
    everyone = [value for values in neighbours.values() for value in values]
    expected = arguments.rate * (arguments.before + arguments.after + 1)
    print(
        f"every-second slots: {len(everyone):,} of {expected:,} stored, max"
        f" {max(everyone):.1f} ms; burst: {len(burst_lateness):,} of {arguments.burst:,}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--burst", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--lead", type=float, default=60.0)
    parser.add_argument("--before", type=int, default=5)
    parser.add_argument("--after", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=2)
    arguments = parser.parse_args()
    for index in range(1, arguments.repeat + 1):
        print(
            f"\nrun {index}: {arguments.burst:,} due at one second, {arguments.rate:,}"
            " every second",
            flush=True,
        )
        asyncio.run(run(arguments))


if __name__ == "__main__":
    main()
