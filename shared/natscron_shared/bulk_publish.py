"""Thousands of JetStream publications at once, acked over one reply subscription.

nats-py's `js.publish` is a request per message (a future, a muxed-inbox lookup, a `PubAck`
built from JSON, a timeout task), which caps a process at about 15,000 acked publishes a
second here. `BulkPublisher` sends each message with a plain `Client.publish` whose reply
subject is a token under a wildcard subscription of its own, and matches the acks to the
tokens: about 140,000 a second on the same machine, the server's work included
(bench/RESULTS.md). The ticker fires its bursts through it.

The guarantees are those of `js.publish`: a message is stored when its ack says so
(`Stored`, possibly as a duplicate of its msg id); a timeout does not mean "not stored"
(the server may still apply it), so callers publish again with the same msg id. At most
`max_in_flight` messages await their ack at once; sending waits for room beyond that.
"""

import asyncio
import itertools
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from natscron_shared.nats_conn import MSG_ID_HEADER, PUBLISH_TIMEOUT_SECONDS

MAX_IN_FLIGHT = 16_384
CHECK_EVERY = 256
"""Messages sent between two calls of a burst's `check`."""
NO_RESPONDERS = "503"


@dataclass(frozen=True, slots=True)
class Prepared:
    """A message ready to send: its subject, its body, its `Nats-Msg-Id` if any."""

    subject: str
    payload: bytes
    msg_id: str | None = None


@dataclass(frozen=True, slots=True)
class Stored:
    stream: str
    duplicate: bool


class PublishRejectedError(Exception):
    """JetStream answered with an error (no stream for the subject, a limit reached...)."""


Outcome = Stored | BaseException
OnOutcome = Callable[[str, str, int], None]
"""Told (stream, outcome, how many) once per `publish_all` and pair: `stored`, `duplicate`
or `failed` (stream ""), counted together, since a metric's lock per message costs more
than the message."""


class BulkPublisher:
    def __init__(
        self,
        client: Client,
        on_outcome: OnOutcome,
        max_in_flight: int = MAX_IN_FLIGHT,
        timeout: float = PUBLISH_TIMEOUT_SECONDS,
    ) -> None:
        self._client = client
        self._on_outcome = on_outcome
        self._timeout = timeout
        self._prefix = ""
        self._tokens = itertools.count()
        self._waiting: dict[str, tuple[float, asyncio.Future[Stored]]] = {}
        """Sent and unanswered, oldest first: token -> (when sent, monotonic; its outcome)."""
        self._room = asyncio.Semaphore(max_in_flight)
        """One unit per message awaiting its ack, given back when it leaves `_waiting`: a
        semaphore wakes one waiting sender per ack, where an event would wake them all."""
        self._subscription: Subscription | None = None

    async def start(self) -> None:
        self._prefix = self._client.new_inbox() + "."
        self._subscription = await self._client.subscribe(
            self._prefix + "*", cb=self._acked, pending_msgs_limit=-1, pending_bytes_limit=-1
        )

    async def stop(self) -> None:
        if self._subscription is not None:
            await self._subscription.unsubscribe()
            self._subscription = None
        for _, waiting in self._waiting.values():
            waiting.cancel()
        self._waiting.clear()

    async def publish_all(
        self, messages: Sequence[Prepared], check: Callable[[], None] | None = None
    ) -> list[Outcome]:
        """Send every message, pipelined, and return each one's outcome, in order, once
        every one has one. `check` runs before the first send and every `CHECK_EVERY`
        after; what it raises is the outcome of every message not sent yet."""
        assert self._subscription is not None, "start() the publisher first"
        loop = asyncio.get_running_loop()
        sent: list[tuple[str, asyncio.Future[Stored]]] = []
        refused: BaseException | None = None
        for index, message in enumerate(messages):
            if index % CHECK_EVERY == 0 and index:
                await asyncio.sleep(0)  # let the acks and the connection's flusher in
            if index % CHECK_EVERY == 0 and check is not None:
                try:
                    check()
                except Exception as exc:
                    refused = exc
                    break
            await self._until_room()
            future: asyncio.Future[Stored] = loop.create_future()
            token = str(next(self._tokens))
            sent.append((token, future))
            self._waiting[token] = (loop.time(), future)
            headers = {MSG_ID_HEADER: message.msg_id} if message.msg_id else None
            try:
                await self._client.publish(
                    message.subject, message.payload, reply=self._prefix + token, headers=headers
                )
            except Exception as exc:
                self._settle(token)
                future.set_exception(exc)
        if sent:
            await asyncio.wait([future for _, future in sent], timeout=self._timeout)
        outcomes: list[Outcome] = [self._outcome(token, future) for token, future in sent]
        for (stream, outcome), count in Counter(map(_label, outcomes)).items():
            self._on_outcome(stream, outcome, count)
        if refused is not None:
            outcomes.extend(refused for _ in range(len(messages) - len(sent)))
        return outcomes

    async def _until_room(self) -> None:
        """Wait until fewer than `max_in_flight` messages await their ack; one unanswered
        for longer than the timeout stops waiting then (its outcome is a timeout)."""
        while self._room.locked():
            try:
                await asyncio.wait_for(self._room.acquire(), self._timeout)
            except TimeoutError:
                self._expire(asyncio.get_running_loop().time() - self._timeout)
            else:
                return
        await self._room.acquire()

    def _expire(self, sent_before: float) -> None:
        for token, (sent_at, future) in list(self._waiting.items()):
            if sent_at > sent_before:
                break
            self._settle(token)
            if not future.done():
                future.set_exception(nats.errors.TimeoutError())

    def _outcome(self, token: str, future: asyncio.Future[Stored]) -> Outcome:
        if not future.done() or future.cancelled():
            future.cancel()
            self._settle(token)
            return nats.errors.TimeoutError()
        return future.exception() or future.result()

    def _settle(self, token: str) -> tuple[float, asyncio.Future[Stored]] | None:
        """Take a message off `_waiting`, giving its room back; None if it was not there."""
        waiting = self._waiting.pop(token, None)
        if waiting is not None:
            self._room.release()
        return waiting

    async def _acked(self, msg: Msg) -> None:
        waiting = self._settle(msg.subject[len(self._prefix) :])
        if waiting is None or waiting[1].done():
            return
        future = waiting[1]
        if not msg.data:
            status = (msg.headers or {}).get("Status", "")
            if status == NO_RESPONDERS:
                future.set_exception(nats.errors.NoRespondersError())
            else:
                future.set_exception(PublishRejectedError(f"status {status or 'none'}"))
            return
        try:
            body = json.loads(msg.data)
        except ValueError:
            future.set_exception(PublishRejectedError(f"unreadable ack {msg.data[:80]!r}"))
            return
        error = body.get("error")
        if error is not None:
            future.set_exception(PublishRejectedError(str(error.get("description", error))))
            return
        future.set_result(Stored(body.get("stream", ""), bool(body.get("duplicate", False))))


def _label(outcome: Outcome) -> tuple[str, str]:
    if isinstance(outcome, Stored):
        return outcome.stream, "duplicate" if outcome.duplicate else "stored"
    return "", "failed"
