"""Acked JetStream publishes per second from one Python process: nats-py's `js.publish`
(pipelined, 512 awaiting their ack at once, as `JetStreamPublisher` does), nats-py's
public `js.publish_async` (one reply subscription, a future per message, as many awaiting
their ack at once as `BulkPublisher` allows) and `BulkPublisher` (one reply subscription,
tokens, frames written by itself), on a fresh embedded nats-server.

Each message is a 400-byte body with its own `Nats-Msg-Id`, into a file stream with a
dedup window, as the ticker's run requests are. The rate includes the server's work (the
same two cores).

Run: `.venv/bin/python bench/bulk_publish.py --messages 100000 --repeat 2`
"""

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from nats.aio.client import Client
from nats.js.api import StreamConfig

from natscron.embedded import start_nats
from natscron_ticker.bulk_publish import MAX_IN_FLIGHT, BulkPublisher, Prepared, Stored

BODY = b"x" * 400
IN_FLIGHT = 512


async def with_js_publish(nc: Client, count: int, prefix: str) -> float:
    js = nc.jetstream()
    room = asyncio.Semaphore(IN_FLIGHT)

    async def one(n: int) -> None:
        async with room:
            await js.publish("bench.run", BODY, headers={"Nats-Msg-Id": f"{prefix}{n}"})

    started = time.perf_counter()
    await asyncio.gather(*(one(n) for n in range(count)))
    return count / (time.perf_counter() - started)


async def with_publish_async(nc: Client, count: int, prefix: str) -> float:
    js = nc.jetstream(publish_async_max_pending=MAX_IN_FLIGHT)
    started = time.perf_counter()
    acks = [
        await js.publish_async("bench.run", BODY, headers={"Nats-Msg-Id": f"{prefix}{n}"})
        for n in range(count)
    ]
    await js.publish_async_completed()
    rate = count / (time.perf_counter() - started)
    stored = sum(1 for ack in acks if ack.exception() is None)
    assert stored == count, f"only {stored} of {count} stored"
    return rate


async def with_bulk(nc: Client, count: int, prefix: str) -> float:
    publisher = BulkPublisher(nc, lambda stream, outcome, count: None)
    await publisher.start()
    messages = [Prepared("bench.run", BODY, f"{prefix}{n}") for n in range(count)]
    started = time.perf_counter()
    outcomes = await publisher.publish_all(messages)
    rate = count / (time.perf_counter() - started)
    await publisher.stop()
    stored = sum(1 for outcome in outcomes if isinstance(outcome, Stored))
    assert stored == count, f"only {stored} of {count} stored"
    return rate


async def run(count: int, repeat: int) -> None:
    print(f"{count:,} acked publishes of 400 bytes, each with a msg id, one process")
    print(" run  js.publish/s  publish_async/s  BulkPublisher/s  bulk/async")
    for run_number in range(1, repeat + 1):
        with tempfile.TemporaryDirectory() as tmp:
            server = await start_nats(Path(tmp))
            nc = Client()
            await nc.connect(server.url)
            await nc.jetstream().add_stream(
                StreamConfig(name="BENCH", subjects=["bench.>"], duplicate_window=120)
            )
            plain = await with_js_publish(nc, count, "a")
            pipelined = await with_publish_async(nc, count, "p")
            bulk = await with_bulk(nc, count, "b")
            await nc.close()
            await server.stop()
        print(
            f"{run_number:4d}  {plain:12,.0f}  {pipelined:15,.0f}  {bulk:15,.0f}"
            f"  {bulk / pipelined:10.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    asyncio.run(run(args.messages, args.repeat))


if __name__ == "__main__":
    main()
