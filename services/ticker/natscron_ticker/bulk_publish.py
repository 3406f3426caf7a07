"""Thousands of JetStream publications at once, acked over one reply subscription.

nats-py's `js.publish` is a request per message (a future, a muxed-inbox lookup, a `PubAck`
built from JSON, a timeout task), which caps a process at about 19,000 acked publishes a
second here. `BulkPublisher` sends each message as a plain publish whose reply subject is
a token under a wildcard subscription of its own, and matches the acks to the tokens:
about 110,000 a second on the same machine, the server's work included
(bench/bulk_publish.py, bench/RESULTS.md). It encodes the protocol frames itself, ahead of
time if asked (`frame`), and hands a burst to the connection `CHECK_EVERY` messages a
write, yielding to the loop every `YIELD_EVERY`, so a burst due at once is on the wire in a
few writes rather than trickling out between its own acks. The ticker fires its bursts
through it.

The writes go through `natscron_shared.nats.client_internals.write_frames`, the one user
of nats-py's private internals, which refuses any nats-py but the version it was tested
with. nats-py's public `JetStreamContext.publish_async` is the same pattern, one message at
a time: less than half this throughput, and the ticker on it missed every lateness target
(bench/RESULTS.md, "publish_async against BulkPublisher").

The guarantees are those of `js.publish`: a message is stored when its ack says so
(`Stored`, possibly as a duplicate of its msg id); a timeout does not mean "not stored"
(the server may still apply it), so callers publish again with the same msg id. At most
`max_in_flight` messages await their ack at once; sending waits for room beyond that.
"""

import asyncio
import collections
import contextlib
import itertools
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from natscron_shared.nats.client_internals import write_frames
from natscron_shared.nats.connection import MSG_ID_HEADER, PUBLISH_TIMEOUT_SECONDS

_UNSAFE = re.compile(r"[\s]")
"""Whitespace would end a subject early and let the rest be read as protocol."""
_UNSAFE_VALUE = re.compile(r"[\r\n]")
MAX_IN_FLIGHT = 16_384
CHECK_EVERY = 256
"""Messages sent between two calls of a burst's `check`."""
YIELD_EVERY = 4_096
"""Messages handed to the connection between two yields to the loop: a burst due at once
goes out in few writes, instead of waiting behind the acks of its first messages."""
NO_RESPONDERS = "503"


@dataclass(frozen=True, slots=True)
class Prepared:
    """A message ready to send: its subject, its body, its `Nats-Msg-Id` if any."""

    subject: str
    payload: bytes
    msg_id: str | None = None


@dataclass(slots=True)
class Framed:
    """Messages encoded for the wire ahead of their sending (`BulkPublisher.frame`): each
    one's reply token, and its protocol frame or the error that kept it from being one."""

    tokens: list[str]
    frames: list[bytes | BaseException]

    def __len__(self) -> int:
        return len(self.tokens)

    @classmethod
    def joined(cls, parts: Iterable["Framed"]) -> "Framed":
        """One send of several parts framed apart, in order."""
        tokens: list[str] = []
        frames: list[bytes | BaseException] = []
        for part in parts:
            tokens += part.tokens
            frames += part.frames
        return cls(tokens, frames)


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
        self._max_in_flight = max_in_flight
        self._room_waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        """Senders waiting for room, first come first woken: one per message that leaves
        `_waiting` (an event would wake them all; `asyncio.Semaphore` looks through all its
        waiters at every acquire, which a burst of thousands of waiting sends makes slow)."""
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

    def frame(self, messages: Sequence[Prepared]) -> "Framed":
        """Encode messages for the wire ahead of their sending (`publish_all`), each with
        the reply token its ack will come on: at their time, only the write is left."""
        assert self._subscription is not None, "start() the publisher first"
        tokens = [str(next(self._tokens)) for _ in messages]
        frames: list[bytes | BaseException] = []
        for message, token in zip(messages, tokens, strict=True):
            try:
                frames.append(self._frame(message, self._prefix + token))
            except Exception as exc:
                frames.append(_bare(exc))
        return Framed(tokens, frames)

    async def publish_all(
        self, messages: "Sequence[Prepared] | Framed", check: Callable[[], None] | None = None
    ) -> list[Outcome]:
        """Send every message, pipelined, and return each one's outcome, in order, once
        every one has one. Messages not `frame`d ahead are framed as they go, a write's
        worth at a time, so a big burst never holds the loop. `check` runs before the first
        send and every `CHECK_EVERY` after; what it raises is the outcome of every message
        not sent yet."""
        assert self._subscription is not None, "start() the publisher first"
        batch = _Batch(len(messages))
        sent_tokens: list[str] = []
        sent = next_check = 0
        next_yield = YIELD_EVERY
        while sent < len(messages):
            if sent >= next_check:
                next_check = sent + CHECK_EVERY
                if check is not None:
                    try:
                        check()
                    except Exception as exc:
                        batch.outcomes[sent:] = [_bare(exc)] * (len(messages) - sent)
                        break
            if sent >= next_yield:
                next_yield += YIELD_EVERY
                await asyncio.sleep(0)  # let the acks in
            await self._until_room()
            room = self._max_in_flight - len(self._waiting)
            end = min(len(messages), next_check, sent + room)
            if isinstance(messages, Framed):
                part = Framed(messages.tokens[sent:end], messages.frames[sent:end])
            else:
                part = self.frame(messages[sent:end])
            await self._send(part, sent, batch)
            sent_tokens += part.tokens
            sent = end
        if batch.unanswered:
            batch.answered.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(batch.answered.wait(), self._timeout)
        for token in sent_tokens:
            self._answer(token, nats.errors.TimeoutError())
        outcomes = [outcome for outcome in batch.outcomes if outcome is not None]
        assert len(outcomes) == len(messages)
        for (stream, label), count in Counter(map(_label, outcomes[:sent])).items():
            self._on_outcome(stream, label, count)
        return outcomes

    def _frame(self, message: Prepared, reply: str) -> bytes:
        """The message as the NATS protocol sends it (`PUB`, or `HPUB` with its msg id):
        encoded here, a burst goes to the connection in one write per `CHECK_EVERY`
        messages, where `Client.publish` would validate, encode and queue each alone at its
        sending. What `Client.publish` refuses is refused here too."""
        subject, payload, msg_id = message.subject, message.payload, message.msg_id
        if _UNSAFE.search(subject) or not subject or (msg_id and _UNSAFE_VALUE.search(msg_id)):
            raise nats.errors.BadSubjectError
        if len(payload) > self._client.max_payload:
            raise nats.errors.MaxPayloadError
        if not msg_id:
            return b"PUB %b %b %d\r\n%b\r\n" % (
                subject.encode(),
                reply.encode(),
                len(payload),
                payload,
            )
        header = b"NATS/1.0\r\n%b: %b\r\n\r\n" % (MSG_ID_HEADER.encode(), msg_id.encode())
        return b"HPUB %b %b %d %d\r\n%b%b\r\n" % (
            subject.encode(),
            reply.encode(),
            len(header),
            len(header) + len(payload),
            header,
            payload,
        )

    async def _send(self, part: "Framed", first: int, batch: _Batch) -> None:
        """Hand `part`, messages `first`.. of `batch`, to the connection in one write, then
        count them as awaiting their ack (none can come before the next yield); a message
        that could not be encoded or written has its error as its outcome."""
        failed: BaseException | None = None
        try:
            await write_frames(
                self._client, b"".join(f for f in part.frames if isinstance(f, bytes))
            )
        except Exception as exc:
            failed = _bare(exc)
        sent_at = asyncio.get_running_loop().time()
        waiting = self._waiting
        for index, (token, frame) in enumerate(zip(part.tokens, part.frames, strict=True), first):
            if isinstance(frame, BaseException):
                batch.outcomes[index] = frame
            elif failed is not None:
                batch.outcomes[index] = failed
            else:
                waiting[token] = (sent_at, batch, index)
                batch.unanswered += 1

    def _full(self) -> bool:
        return len(self._waiting) >= self._max_in_flight

    async def _until_room(self) -> None:
        """Wait until fewer than `max_in_flight` messages await their ack; one unanswered
        for longer than the timeout stops waiting then (its outcome is a timeout)."""
        loop = asyncio.get_running_loop()
        while self._full():
            woken = loop.create_future()
            self._room_waiters.append(woken)
            try:
                async with asyncio.timeout(self._timeout):
                    await woken
            except TimeoutError:
                self._expire(loop.time() - self._timeout)

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
            _, batch, index = waiting
            batch.settle(index, outcome)
            while self._room_waiters:
                woken = self._room_waiters.popleft()
                if not woken.done():
                    woken.set_result(None)
                    break

    async def _acked(self, msg: Msg) -> None:
        token = msg.subject[len(self._prefix) :]
        if token in self._waiting:
            self._answer(token, _outcome_of(msg))


def _bare(error: BaseException) -> BaseException:
    """An error kept as an outcome, without its traceback: the traceback holds the frame
    that holds the outcomes that hold the error, a cycle only the garbage collector could
    free, and a big burst's frames with it (the ticker freezes what a burst leaves behind,
    `collector_pause.py`)."""
    return error.with_traceback(None)


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
