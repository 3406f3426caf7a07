"""`BulkPublisher` on a real nats-server: every message gets its own outcome, in order
(stored, duplicate, no stream, refused by `check`), at most the bound awaits an ack, and
an unanswered message times out without holding up the others."""

import asyncio
import json
from collections import Counter

import nats.errors
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from natscron_shared.contract import names
from natscron_ticker.bulk_publish import CHECK_EVERY, BulkPublisher, Framed, Prepared, Stored
from tests.waiting import eventually

pytestmark = pytest.mark.integration

HELD = "test.bulk.held"


class NotNow(Exception):
    pass


async def started(
    nc: Client, outcomes: Counter[tuple[str, str]], max_in_flight: int = 100, ack_wait: float = 5
) -> BulkPublisher:
    def count(stream: str, outcome: str, publications: int) -> None:
        outcomes[(stream, outcome)] += publications

    publisher = BulkPublisher(nc, count, max_in_flight, ack_wait)
    await publisher.start()
    return publisher


async def test_each_message_gets_its_outcome_in_order(nc: Client) -> None:
    counted: Counter[tuple[str, str]] = Counter()
    publisher = await started(nc, counted)
    subject = names.job_event_subject("bulk")
    messages = [Prepared(subject, b"{}", f"m-{n}") for n in range(1_000)]
    messages += [Prepared(subject, b"{}", "m-7"), Prepared("test.no.stream", b"{}")]

    outcomes = await publisher.publish_all(messages)

    assert outcomes[:1_000] == [Stored(names.STREAM_EVENTS, duplicate=False)] * 1_000
    assert outcomes[1_000] == Stored(names.STREAM_EVENTS, duplicate=True)
    assert isinstance(outcomes[1_001], nats.errors.NoRespondersError)
    info = await nc.jetstream().stream_info(names.STREAM_EVENTS)
    assert info.state.messages == 1_000
    assert counted == {
        (names.STREAM_EVENTS, "stored"): 1_000,
        (names.STREAM_EVENTS, "duplicate"): 1,
        ("", "failed"): 1,
    }
    await publisher.stop()


async def test_messages_framed_ahead_and_joined_go_out_in_order(nc: Client) -> None:
    publisher = await started(nc, Counter())
    subject = names.job_event_subject("framed")
    first = publisher.frame([Prepared(subject, b"{}", f"f-{n}") for n in range(300)])
    second = publisher.frame([Prepared("bad subject", b"{}"), Prepared(subject, b"{}", "f-0")])

    outcomes = await publisher.publish_all(Framed.joined([first, second]))

    assert outcomes[:300] == [Stored(names.STREAM_EVENTS, duplicate=False)] * 300
    assert isinstance(outcomes[300], nats.errors.BadSubjectError)
    assert outcomes[300].__traceback__ is None
    assert outcomes[301] == Stored(names.STREAM_EVENTS, duplicate=True)
    info = await nc.jetstream().stream_info(names.STREAM_EVENTS)
    assert info.state.messages == 300
    await publisher.stop()


async def test_a_refusing_check_stops_the_sends_and_is_the_outcome_of_the_rest(
    nc: Client,
) -> None:
    publisher = await started(nc, Counter())
    calls = 0

    def check() -> None:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise NotNow

    subject = names.job_event_subject("checked")
    count = CHECK_EVERY + 10
    outcomes = await publisher.publish_all(
        [Prepared(subject, b"{}", f"c-{n}") for n in range(count)], check
    )

    assert all(isinstance(o, Stored) for o in outcomes[:CHECK_EVERY])
    assert all(isinstance(o, NotNow) for o in outcomes[CHECK_EVERY:])
    # kept without the traceback that would hold the burst's messages in a cycle
    assert isinstance(outcomes[-1], NotNow) and outcomes[-1].__traceback__ is None
    info = await nc.jetstream().stream_info(names.STREAM_EVENTS)
    assert info.state.messages == CHECK_EVERY
    await publisher.stop()


async def test_at_most_the_bound_awaits_acks_and_silence_times_out(nc: Client) -> None:
    """A core subscriber stands in for a slow stream: it holds the requests and answers
    only some of them, so what is on the wire at once can be counted."""
    held: list[Msg] = []

    async def hold(msg: Msg) -> None:
        held.append(msg)

    await nc.subscribe(HELD, cb=hold)
    publisher = await started(nc, Counter(), max_in_flight=3, ack_wait=1.0)
    sending = [Prepared(HELD, json.dumps({"n": n}).encode(), f"h-{n}") for n in range(5)]

    async def on_the_wire() -> int:
        await nc.flush()
        return len(held)

    send = asyncio.create_task(publisher.publish_all(sending))
    await eventually(on_the_wire, lambda seen: seen == 3, what="three requests")
    assert await on_the_wire() == 3
    await held[0].respond(json.dumps({"stream": "HELD", "seq": 1}).encode())
    await eventually(on_the_wire, lambda seen: seen == 4, what="the fourth request")
    assert await on_the_wire() == 4  # the fifth waits for room: the first ones time out
    outcomes = await send

    assert await on_the_wire() == 5
    assert outcomes[0] == Stored("HELD", duplicate=False)
    assert all(isinstance(o, nats.errors.TimeoutError) for o in outcomes[1:])
    assert len(outcomes) == 5
    await publisher.stop()


async def test_concurrent_bursts_larger_than_the_bound_all_go_out(nc: Client) -> None:
    """Each burst hands what it has encoded to the connection before it waits for room,
    so bursts waiting on one another never hold room with messages nobody sent."""
    publisher = await started(nc, Counter(), max_in_flight=50, ack_wait=5.0)
    subject = names.job_event_subject("concurrent")
    bursts = [
        [Prepared(subject, b"{}", f"b{burst}-{n}") for n in range(CHECK_EVERY + 44)]
        for burst in range(4)
    ]
    started_at = asyncio.get_running_loop().time()

    results = await asyncio.gather(*(publisher.publish_all(burst) for burst in bursts))

    assert all(isinstance(o, Stored) and not o.duplicate for r in results for o in r)
    assert asyncio.get_running_loop().time() - started_at < 5.0, "a burst waited for a timeout"
    info = await nc.jetstream().stream_info(names.STREAM_EVENTS)
    assert info.state.messages == 4 * (CHECK_EVERY + 44)
    await publisher.stop()
