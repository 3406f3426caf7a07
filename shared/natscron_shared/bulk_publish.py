"""Thousands of JetStream publications at once, acked over one reply subscription.

nats-py's `js.publish` is a request per message (a future, a muxed-inbox lookup, a `PubAck`
built from JSON, a timeout task), which caps a process at about 19,000 acked publishes a
second here. `BulkPublisher` sends each message with a plain `Client.publish` whose reply
subject is a token under a wildcard subscription of its own, and matches the acks to the
tokens: 92,000-97,000 a second on the same machine, the server's work included
(bench/bulk_publish.py, bench/RESULTS.md). The ticker fires its bursts through it.

The guarantees are those of `js.publish`: a message is stored when its ack says so
(`Stored`, possibly as a duplicate of its msg id); a timeout does not mean "not stored"
(the server may still apply it), so callers publish again with the same msg id. At most
`max_in_flight` messages await their ack at once; sending waits for room beyond that.
"""

import asyncio
import contextlib
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


class _Batch:
    """The outcomes of one `publish_all`, filled in as its acks come."""

    def __init__(self, size: int) -> None:
        self.outcomes: list[Outcome | None] = [None] * size
        self.unanswered = 0
        self.answered = asyncio.Event()

    def settle(self, index: int, outcome: Outcome) -> None:
        self.outcomes[index] = outcome
        self.unanswered -= 1
        if not self.unanswered:
            self.answered.set()


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
        self._waiting: dict[str, tuple[float, _Batch, int]] = {}
        """Sent and unanswered, oldest first: token -> (when sent, monotonic; its batch and
        place in it)."""
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
        for token in list(self._waiting):
            self._answer(token, nats.errors.ConnectionClosedError())

    async def publish_all(
        self, messages: Sequence[Prepared], check: Callable[[], None] | None = None
    ) -> list[Outcome]:
        """Send every message, pipelined, and return each one's outcome, in order, once
        every one has one. `check` runs before the first send and every `CHECK_EVERY`
        after; what it raises is the outcome of every message not sent yet."""
        assert self._subscription is not None, "start() the publisher first"
        loop = asyncio.get_running_loop()
        batch = _Batch(len(messages))
        tokens: list[str] = []
        for index, message in enumerate(messages):
            if index % CHECK_EVERY == 0 and index:
                await asyncio.sleep(0)  # let the acks and the connection's flusher in
            if index % CHECK_EVERY == 0 and check is not None:
                try:
                    check()
                except Exception as exc:
                    batch.outcomes[index:] = [exc] * (len(messages) - index)
                    break
            await self._until_room()
            token = str(next(self._tokens))
            tokens.append(token)
            self._waiting[token] = (loop.time(), batch, index)
            batch.unanswered += 1
            headers = {MSG_ID_HEADER: message.msg_id} if message.msg_id else None
            try:
                await self._client.publish(
                    message.subject, message.payload, reply=self._prefix + token, headers=headers
                )
            except Exception as exc:
                self._answer(token, exc)
        if batch.unanswered:
            batch.answered.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(batch.answered.wait(), self._timeout)
        for token in tokens:
            self._answer(token, nats.errors.TimeoutError())
        outcomes = [outcome for outcome in batch.outcomes if outcome is not None]
        assert len(outcomes) == len(messages)
        for (stream, label), count in Counter(map(_label, outcomes[: len(tokens)])).items():
            self._on_outcome(stream, label, count)
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
        for token, (sent_at, _, _) in list(self._waiting.items()):
            if sent_at > sent_before:
                break
            self._answer(token, nats.errors.TimeoutError())

    def _answer(self, token: str, outcome: Outcome) -> None:
        """Give a message still awaiting its ack its outcome and its room back; nothing if
        it has one already."""
        waiting = self._waiting.pop(token, None)
        if waiting is not None:
            self._room.release()
            _, batch, index = waiting
            batch.settle(index, outcome)

    async def _acked(self, msg: Msg) -> None:
        token = msg.subject[len(self._prefix) :]
        if token in self._waiting:
            self._answer(token, _outcome_of(msg))


def _outcome_of(msg: Msg) -> Outcome:
    if not msg.data:
        status = (msg.headers or {}).get("Status", "")
        if status == NO_RESPONDERS:
            return nats.errors.NoRespondersError()
        return PublishRejectedError(f"status {status or 'none'}")
    try:
        body = json.loads(msg.data)
    except ValueError:
        return PublishRejectedError(f"unreadable ack {msg.data[:80]!r}")
    error = body.get("error")
    if error is not None:
        return PublishRejectedError(str(error.get("description", error)))
    return Stored(body.get("stream", ""), bool(body.get("duplicate", False)))


def _label(outcome: Outcome) -> tuple[str, str]:
    if isinstance(outcome, Stored):
        return outcome.stream, "duplicate" if outcome.duplicate else "stored"
    return "", "failed"
