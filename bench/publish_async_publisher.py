"""`BulkPublisher`'s interface on nats-py's public `JetStreamContext.publish_async`, to
measure the ticker on the public API (bench/lateness.py `--publishers publish_async`).

`publish_async` is the same pattern as `BulkPublisher` (one wildcard reply subscription,
acks matched to tokens), but each message is validated, encoded and queued alone at its
sending, with a future, a done callback and a `PubAck` of its own. Nothing can be encoded
ahead: `frame` only keeps the messages (a token is a message's subject and msg id, which
hold no whitespace; its frame is the body), and `publish_all` sends them at their time.
A future of `publish_async` never times out by itself: `publish_all` cancels those still
unanswered after the timeout, which gives their room back. No `wait_stall`: on Python 3.11
`asyncio.wait_for` with a timeout runs the wait for room as a task of its own, a loop
iteration per message, which made `publish_async` 4-5x slower in bench/bulk_publish.py
(8-12k against 34-53k acked publishes/s); without it, a send waits for room for as long
as the earlier batches take to be answered or cancelled.

Bench-only: `publish_async_ticker` puts it where the ticker builds its `BulkPublisher`.
"""

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Sequence

import nats.errors
from nats.aio.client import Client
from nats.js.api import PubAck

from natscron_shared.nats.connection import MSG_ID_HEADER, PUBLISH_TIMEOUT_SECONDS
from natscron_ticker.bulk_publish import (
    CHECK_EVERY,
    MAX_IN_FLIGHT,
    YIELD_EVERY,
    BulkPublisher,
    Framed,
    OnOutcome,
    Outcome,
    Prepared,
    Stored,
)

log = logging.getLogger(__name__)

STARTED = "publishing through nats-py's js.publish_async"
"""Logged at `start`: the benchmark checks the ticker's log for it."""


class PublishAsyncPublisher(BulkPublisher):
    """A `BulkPublisher` in interface only: none of its own machinery is used."""

    def __init__(
        self,
        client: Client,
        on_outcome: OnOutcome,
        max_in_flight: int = MAX_IN_FLIGHT,
        timeout: float = PUBLISH_TIMEOUT_SECONDS,
    ) -> None:
        super().__init__(client, on_outcome, max_in_flight, timeout)
        self._js = client.jetstream(publish_async_max_pending=max_in_flight)

    async def start(self) -> None:
        log.info(STARTED)

    async def stop(self) -> None:
        """Nothing to stop: `publish_all` leaves no future unanswered behind it."""

    def frame(self, messages: Sequence[Prepared]) -> Framed:
        return Framed(
            [f"{message.subject} {message.msg_id or ''}" for message in messages],
            [message.payload for message in messages],
        )

    async def publish_all(
        self, messages: Sequence[Prepared] | Framed, check: Callable[[], None] | None = None
    ) -> list[Outcome]:
        framed = messages if isinstance(messages, Framed) else self.frame(messages)
        sent: list[asyncio.Future[PubAck] | BaseException] = []
        refused: list[BaseException] = []
        for index, (token, payload) in enumerate(zip(framed.tokens, framed.frames, strict=True)):
            if index % CHECK_EVERY == 0 and check is not None:
                try:
                    check()
                except Exception as exc:
                    refused = [exc.with_traceback(None)] * (len(framed) - index)
                    break
            if index and index % YIELD_EVERY == 0:
                await asyncio.sleep(0)  # let the acks in
            sent.append(await self._publish_one(token, payload))
        futures = [ack for ack in sent if isinstance(ack, asyncio.Future)]
        if futures:
            _, unanswered = await asyncio.wait(futures, timeout=self._timeout)
            for future in unanswered:
                future.cancel()
        outcomes = [_outcome_of(ack) for ack in sent]
        for (stream, label), count in Counter(map(_label, outcomes)).items():
            self._on_outcome(stream, label, count)
        return outcomes + refused

    async def _publish_one(
        self, token: str, payload: bytes | BaseException
    ) -> "asyncio.Future[PubAck] | BaseException":
        if isinstance(payload, BaseException):
            return payload
        subject, _, msg_id = token.partition(" ")
        try:
            return await self._js.publish_async(
                subject,
                payload,
                headers={MSG_ID_HEADER: msg_id} if msg_id else None,
            )
        except Exception as exc:
            return exc.with_traceback(None)


def _outcome_of(ack: "asyncio.Future[PubAck] | BaseException") -> Outcome:
    if isinstance(ack, BaseException):
        return ack
    if ack.cancelled():
        return nats.errors.TimeoutError()
    error = ack.exception()
    if error is not None:
        return error.with_traceback(None)
    result = ack.result()
    return Stored(result.stream, bool(result.duplicate))


def _label(outcome: Outcome) -> tuple[str, str]:
    if isinstance(outcome, Stored):
        return outcome.stream, "duplicate" if outcome.duplicate else "stored"
    return "", "failed"
