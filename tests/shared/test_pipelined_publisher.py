"""`JetStreamPublisher.publish_nowait` on a real nats-server: publishes go out without
waiting for earlier acks, never more than the bound at once, and a failed `check`
sends nothing."""

import json
from collections.abc import Callable

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from prometheus_client import CollectorRegistry
from pydantic import BaseModel

from natscron_shared.contract import names
from natscron_shared.nats.connection import JetStreamPublisher, all_acked
from tests.waiting import eventually

pytestmark = pytest.mark.integration

HELD = "test.pipeline.held"


class Note(BaseModel):
    n: int


class NotNow(Exception):
    pass


def refuse() -> None:
    raise NotNow


def more_than(count: int) -> Callable[[int], bool]:
    return lambda seen: seen > count


async def test_at_most_the_bound_awaits_acks_and_the_rest_follow_as_acks_come(
    nc: Client,
) -> None:
    """A core subscriber stands in for a slow stream: it holds the requests it gets and
    answers them when told, so what is on the wire at once can be counted."""
    held: list[Msg] = []

    async def hold(msg: Msg) -> None:
        held.append(msg)

    await nc.subscribe(HELD, cb=hold)
    registry = CollectorRegistry()
    publisher = JetStreamPublisher(nc.jetstream(), registry, max_in_flight=3)
    sends = [publisher.publish_nowait(HELD, Note(n=n), msg_id=f"note-{n}") for n in range(8)]

    async def on_the_wire() -> int:
        await nc.flush()
        return len(held)

    answered = 0
    while answered < len(sends):
        await eventually(on_the_wire, more_than(answered), what="the next requests")
        assert await on_the_wire() - answered <= 3
        assert (registry.get_sample_value("natscron_jetstream_publishes_in_flight") or 0) <= 3
        for msg in held[answered:]:
            seq = json.loads(msg.data)["n"] + 1
            await msg.respond(json.dumps({"stream": "HELD", "seq": seq}).encode())
        answered = len(held)

    acks = await all_acked(sends)
    assert [ack.seq for ack in acks] == list(range(1, 9))
    assert [msg.headers and msg.headers["Nats-Msg-Id"] for msg in held] == [
        f"note-{n}" for n in range(8)
    ]
    assert registry.get_sample_value("natscron_jetstream_publishes_in_flight") == 0
    stored = registry.get_sample_value(
        "natscron_jetstream_published_total", {"stream": "HELD", "outcome": "stored"}
    )
    assert stored == 8


async def test_a_failed_check_sends_nothing_and_one_failure_leaves_the_others_stored(
    nc: Client,
) -> None:
    js = nc.jetstream()
    registry = CollectorRegistry()
    publisher = JetStreamPublisher(js, registry)
    subject = names.job_event_subject("pipelined")
    sends = [
        publisher.publish_nowait(subject, Note(n=1), msg_id="one"),
        publisher.publish_nowait(subject, Note(n=2), msg_id="two", check=refuse),
        publisher.publish_nowait("test.no.stream", Note(n=3)),
        publisher.publish_nowait(subject, Note(n=4), msg_id="one"),
    ]
    with pytest.raises(NotNow):
        await all_acked(sends)

    assert all(send.done() for send in sends)
    assert not sends[0].exception() and not sends[3].exception()
    assert sends[3].result().duplicate
    info = await js.stream_info(names.STREAM_EVENTS)
    assert info.state.messages == 1
    counts = {
        outcome: registry.get_sample_value(
            "natscron_jetstream_published_total", {"stream": stream, "outcome": outcome}
        )
        for stream, outcome in [
            (names.STREAM_EVENTS, "stored"),
            (names.STREAM_EVENTS, "duplicate"),
            ("", "failed"),
        ]
    }
    assert counts == {"stored": 1, "duplicate": 1, "failed": 1}
