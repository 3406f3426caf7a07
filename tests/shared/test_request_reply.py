"""The one request/reply style (`natscron_shared.nats.request_reply`) on a real nats-server:
what a micro service answers, how it fails, how it is found, and how it stops."""

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import nats.errors
import pytest
from nats.aio.client import Client
from nats.micro.request import ERROR_CODE_HEADER, ERROR_HEADER
from prometheus_client import CollectorRegistry
from pydantic import BaseModel, Field

from natscron_shared.contract.errors import NotRetryableError, UnavailableError
from natscron_shared.nats.request_reply import (
    Endpoint,
    MicroService,
    RemoteError,
    request,
)
from tests.servers import Server
from tests.waiting import eventually


class Echo(BaseModel):
    word: str = Field(pattern=r"^[a-z]+$")


class Echoed(BaseModel):
    word: str
    by: str


class Replies:
    """What the endpoint does, by word: echo, refuse, crash, or wait to be released."""

    def __init__(self, by: str) -> None:
        self.by = by
        self.seen: list[str] = []
        self.release = asyncio.Event()
        self.waiting = asyncio.Event()

    async def answer(self, echo: Echo) -> Echoed:
        self.seen.append(echo.word)
        if echo.word == "refuse":
            raise NotRetryableError("job 'x' is completed; only failed jobs are retried")
        if echo.word == "crash":
            raise RuntimeError("boom")
        if echo.word == "lost":
            raise nats.errors.ConnectionReconnectingError
        if echo.word == "slow":
            self.waiting.set()
            await self.release.wait()
        return Echoed(word=echo.word, by=self.by)


def service(replies: Replies, **endpoint: Any) -> MicroService:
    return MicroService(
        "natscron-test",
        "echoes",
        [Endpoint("test.echo", Echo, replies.answer, "echo a word", max_bytes=100, **endpoint)],
        CollectorRegistry(),
    )


@pytest.fixture
async def clients(nats_server: Server) -> AsyncIterator[list[Client]]:
    opened: list[Client] = []
    for _ in range(3):
        client = Client()
        await client.connect(nats_server.url)
        opened.append(client)
    yield opened
    for client in opened:
        await client.close()


async def raw(client: Client, body: bytes) -> tuple[dict[str, str], dict[str, Any]]:
    reply = await client.request("test.echo", body, timeout=5)
    return dict(reply.headers or {}), json.loads(reply.data)


def count(micro: MicroService, outcome: str) -> float:
    wanted = {"endpoint": "test.echo", "outcome": outcome}
    samples = [s for metric in micro.requests.collect() for s in metric.samples]
    return next((s.value for s in samples if s.name.endswith("_total") and s.labels == wanted), 0)


async def test_answers_refusals_and_failures_have_one_shape(clients: list[Client]) -> None:
    server, asker, _ = clients
    micro = service(Replies("one"))
    await micro.start(server)
    try:
        headers, body = await raw(asker, b'{"word": "hello"}')
        assert body == {"word": "hello", "by": "one"} and ERROR_CODE_HEADER not in headers

        cases = {
            b"{nope": ("malformed_json", "400"),
            b'{"word": "Two Words"}': ("invalid_request", "422"),
            b"": ("invalid_request", "422"),
            b'{"word": "' + b"a" * 200 + b'"}': ("message_too_large", "413"),
            b'{"word": "refuse"}': ("not_retryable", "409"),
            b'{"word": "lost"}': ("unavailable", "503"),
            b'{"word": "crash"}': ("internal_error", "500"),
        }
        for payload, (code, status) in cases.items():
            headers, body = await raw(asker, payload)
            assert body["error"]["code"] == code, (payload, body)
            assert headers[ERROR_CODE_HEADER] == status
            assert headers[ERROR_HEADER] == body["error"]["message"] != ""
        assert "word" in (await raw(asker, b'{"word": "A"}'))[1]["error"]["message"]
        assert "boom" not in (await raw(asker, b'{"word": "crash"}'))[1]["error"]["message"]

        assert count(micro, "ok") == 1
        assert count(micro, "invalid_request") == 3
        assert count(micro, "internal_error") == 2
    finally:
        await micro.stop()


async def test_the_asking_side_gets_the_model_or_the_remote_code(clients: list[Client]) -> None:
    server, asker, _ = clients
    micro = service(Replies("one"))
    await micro.start(server)
    try:
        echoed = await request(asker, "test.echo", Echo(word="hi"), Echoed, who="echo")
        assert echoed == Echoed(word="hi", by="one")
        with pytest.raises(RemoteError) as refused:
            await request(asker, "test.echo", Echo(word="refuse"), Echoed, who="echo")
        assert refused.value.code == "not_retryable" and "completed" in refused.value.detail
        with pytest.raises(RemoteError) as crashed:
            await request(asker, "test.echo", Echo(word="crash"), Echoed, who="echo")
        assert crashed.value.code == "remote_error"
        assert crashed.value.detail.startswith("the echo failed: internal error")
    finally:
        await micro.stop()
    with pytest.raises(UnavailableError) as nobody:
        await request(asker, "test.echo", Echo(word="hi"), Echoed, who="echo")
    assert "no echo answered" in nobody.value.detail


async def test_a_fire_and_forget_request_is_handled(clients: list[Client]) -> None:
    server, asker, _ = clients
    replies = Replies("one")
    micro = service(replies)
    await micro.start(server)
    try:
        await asker.publish("test.echo", b'{"word": "quiet"}')
        await asker.publish("test.echo", b"{nope")

        async def seen() -> list[str]:
            return replies.seen

        async def malformed() -> float:
            return count(micro, "malformed_json")

        await eventually(seen, lambda words: words == ["quiet"], what="handled")
        await eventually(malformed, lambda n: n == 1, what="the bad one counted")
    finally:
        await micro.stop()


async def test_one_instance_answers_unless_each_has_its_own_group(
    clients: list[Client],
) -> None:
    first, second, asker = clients
    shared = [service(Replies("a")), service(Replies("b"))]
    own = [service(Replies(by), queue_group=f"only-{by}") for by in ("c", "d")]
    for micro, client in zip(shared, (first, second), strict=True):
        await micro.start(client)
    try:
        inbox = asker.new_inbox()
        answers: asyncio.Queue[bytes] = asyncio.Queue()

        async def collect(msg: Any) -> None:
            answers.put_nowait(msg.data)

        await asker.subscribe(inbox, cb=collect)
        await asker.publish("test.echo", b'{"word": "who"}', reply=inbox)
        await asyncio.wait_for(answers.get(), 5)
        await asker.flush()
        for micro in shared:
            await micro.stop()
        for micro, client in zip(own, (first, second), strict=True):
            await micro.start(client)
        await asker.publish("test.echo", b'{"word": "who"}', reply=inbox)
        by = {json.loads(await asyncio.wait_for(answers.get(), 5))["by"] for _ in range(2)}
        assert by == {"c", "d"}
        assert answers.empty(), "the shared group answered once"
    finally:
        for micro in (*shared, *own):
            await micro.stop()


async def test_the_service_is_discoverable(clients: list[Client]) -> None:
    server, asker, _ = clients
    micro = service(Replies("one"))
    await micro.start(server)
    try:
        info = json.loads((await asker.request("$SRV.INFO.natscron-test", b"", timeout=5)).data)
        assert info["name"] == "natscron-test"
        assert [(e["name"], e["subject"]) for e in info["endpoints"]] == [
            ("test-echo", "test.echo")
        ]
        assert info["endpoints"][0]["metadata"] == {"description": "echo a word"}
    finally:
        await micro.stop()


async def test_stop_finishes_the_request_it_answers(clients: list[Client]) -> None:
    server, asker, _ = clients
    replies = Replies("one")
    micro = service(replies)
    await micro.start(server)
    slow = asyncio.create_task(raw(asker, b'{"word": "slow"}'))
    await asyncio.wait_for(replies.waiting.wait(), 5)
    stopping = asyncio.create_task(micro.stop(grace_seconds=10))
    done, _ = await asyncio.wait({stopping}, timeout=0.3)
    assert not done, "stop waits for the request being answered"
    replies.release.set()
    assert (await slow)[1] == {"word": "slow", "by": "one"}
    await asyncio.wait_for(stopping, 5)
    with pytest.raises(nats.errors.NoRespondersError):
        await asker.request("test.echo", b'{"word": "gone"}', timeout=5)
