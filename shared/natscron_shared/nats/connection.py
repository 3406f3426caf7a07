"""One NATS connection per service: a FastStream broker, for its typed request/reply and
batched pull subscribers and the AsyncAPI document, with the nats-py client under it for
what FastStream cannot express (the runner's two-lane priority pull, the KV lease, KV
watches). Every JetStream publish goes through `JetStreamPublisher`, so the traffic
metrics count what really flows, whichever layer sent it.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import nats.errors
import nats.js.errors
from faststream.nats import NatsBroker
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import PubAck
from prometheus_client import CollectorRegistry, Counter, Gauge
from pydantic import BaseModel

from natscron_shared.nats.auth import inbox_prefix, nats_security
from natscron_shared.nats.seed_servers import seed_servers
from natscron_shared.runtime.settings import Settings

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_SECONDS = 10.0
MAX_PUBLISHES_IN_FLIGHT = 512
"""Pipelined publishes awaiting their ack at once, per process: enough to keep thousands
a second flowing over one connection, few enough that a stalled server cannot make a
process pile up unbounded requests (the rest wait their turn in memory)."""
CONNECT_TIMEOUT_SECONDS = 5
MSG_ID_HEADER = "Nats-Msg-Id"
TRANSIENT_NATS_ERRORS: tuple[type[BaseException], ...] = (
    TimeoutError,
    nats.errors.TimeoutError,
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.ConnectionDrainingError,
    nats.errors.NoServersError,
    nats.errors.NoRespondersError,
    nats.errors.StaleConnectionError,
    nats.errors.OutboundBufferLimitError,
    nats.js.errors.ServiceUnavailableError,
)
"""Errors a retry can outlive (a reconnect, a JetStream leader election). Anything else,
such as a consumer or stream that no longer exists, is not retried: it fails loudly."""


def new_broker(
    settings: Settings, urls: str, app_name: str, middlewares: Sequence[Any] = ()
) -> NatsBroker:
    """A broker on the seed servers `urls` (`seed_servers`) that authenticates as the
    settings say, reconnects forever and, on stop, waits up to `shutdown_grace_seconds`
    for its handlers in flight. Per-message logs go to DEBUG: at INFO they would drown the
    services' own lines."""
    return NatsBroker(
        seed_servers(urls),
        name=app_name,
        security=nats_security(settings),
        inbox_prefix=inbox_prefix(settings),
        log_level=logging.DEBUG,
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        max_reconnect_attempts=-1,
        graceful_timeout=settings.shutdown_grace_seconds,
        middlewares=tuple(middlewares),
    )


def client_of(broker: NatsBroker) -> Client:
    client: Client = broker.connection
    return client


def jetstream_of(broker: NatsBroker) -> JetStreamContext:
    js: JetStreamContext = client_of(broker).jetstream()
    return js


def to_json(model: BaseModel) -> bytes:
    return model.model_dump_json().encode()


Outgoing = tuple[str, BaseModel, str | None]
"""A message to publish: subject, model, msg id."""


class JetStreamPublisher:
    """Publishes models to streams; `msg_id` makes a retry harmless.

    `publish` sends at once and waits for the ack. The pipelined forms (`publish_in_turn`,
    `publish_many`, `publish_nowait`) never wait for an earlier ack before sending, and
    share a bound: at most `max_in_flight` of their publications await an ack at once,
    the others wait for room, in turn. Their `check` runs after that wait, right before
    the send; whatever it raises is the publication's error, with nothing sent (the
    ticker checks its lease there). An error after the send, a timeout above all, does
    not mean "not stored": the server may still apply it (after a reconnect, say), which
    is why callers retry with the same msg id rather than assume.

    Counts every publication in `natscron_jetstream_published_total` by stream and outcome
    (`stored`, `duplicate`: JetStream already had that msg id, `failed`) when it ends."""

    def __init__(
        self,
        js: JetStreamContext,
        registry: CollectorRegistry,
        max_in_flight: int = MAX_PUBLISHES_IN_FLIGHT,
    ) -> None:
        self._js = js
        self._published = Counter(
            "natscron_jetstream_published_total",
            "JetStream publications by stream and outcome (stored, duplicate, failed)",
            ["stream", "outcome"],
            registry=registry,
        )
        self._in_flight = Gauge(
            "natscron_jetstream_publishes_in_flight",
            "Pipelined JetStream publications sent and awaiting their ack",
            registry=registry,
        )
        self._room = asyncio.Semaphore(max_in_flight)

    async def publish(self, subject: str, model: BaseModel, msg_id: str | None = None) -> PubAck:
        return await self._send(subject, to_json(model), msg_id)

    async def publish_in_turn(
        self,
        subject: str,
        model: BaseModel,
        msg_id: str | None = None,
        check: Callable[[], None] | None = None,
    ) -> PubAck:
        """Publish once there is room, and wait for the ack: many callers doing this at
        once are pipelined on the connection, each awaiting only its own ack."""
        payload = to_json(model)
        async with self._room:
            if check is not None:
                check()
            self._in_flight.inc()
            try:
                return await self._send(subject, payload, msg_id)
            finally:
                self._in_flight.dec()

    def publish_nowait(
        self,
        subject: str,
        model: BaseModel,
        msg_id: str | None = None,
        check: Callable[[], None] | None = None,
    ) -> asyncio.Task[PubAck]:
        """`publish_in_turn` as a task, to go on before the ack (see `all_acked`). Its
        failure is counted when it happens, so the task never logs it as unretrieved,
        even if its owner stopped waiting."""
        send = asyncio.create_task(self.publish_in_turn(subject, model, msg_id, check))
        send.add_done_callback(_counted_already)
        return send

    async def publish_many(
        self, messages: Sequence[Outgoing], check: Callable[[], None] | None = None
    ) -> list[PubAck]:
        """Publish all pipelined; their acks in order, or the first error once all have
        ended. A single message, the usual case, is awaited without a task."""
        if len(messages) == 1:
            subject, model, msg_id = messages[0]
            return [await self.publish_in_turn(subject, model, msg_id, check)]
        return await all_acked(
            [
                self.publish_nowait(subject, model, msg_id, check)
                for subject, model, msg_id in messages
            ]
        )

    def count(self, stream: str, outcome: str, publications: int = 1) -> None:
        """Count publications sent another way (`bulk_publish`) with these."""
        self._published.labels(stream, outcome).inc(publications)

    async def _send(self, subject: str, payload: bytes, msg_id: str | None) -> PubAck:
        headers = {MSG_ID_HEADER: msg_id} if msg_id else None
        try:
            ack: PubAck = await self._js.publish(
                subject, payload, timeout=PUBLISH_TIMEOUT_SECONDS, headers=headers
            )
        except Exception:
            self._published.labels("", "failed").inc()
            raise
        self._published.labels(ack.stream, "duplicate" if ack.duplicate else "stored").inc()
        return ack


def _counted_already(send: asyncio.Task[PubAck]) -> None:
    """Mark a pipelined publication's error as seen: it was counted already."""
    if not send.cancelled():
        send.exception()


async def all_acked(sends: Sequence[asyncio.Task[PubAck]]) -> list[PubAck]:
    """The acks of pipelined publications, once every one has ended; raises the first
    error. Waiting for all before raising leaves none unaccounted for when the caller
    decides what to do next. Cancelling this wait leaves the publications running: what
    was sent cannot be taken back, and their outcome is still counted."""
    if sends:
        await asyncio.wait(sends)
    return [send.result() for send in sends]


def received_counter(registry: CollectorRegistry) -> Counter:
    """`natscron_jetstream_received_total`: messages this process took from each durable
    consumer, however it pulled them."""
    return Counter(
        "natscron_jetstream_received_total",
        "JetStream messages received, by durable consumer",
        ["consumer"],
        registry=registry,
    )


async def settle_quietly(action: Awaitable[None], what: str, about: str) -> None:
    """Run an ack, nak or term whose failure only means a redelivery after ack_wait,
    which every consumer here handles idempotently: log it, never raise it."""
    try:
        await action
    except Exception:
        log.warning("could not %s %s; JetStream will redeliver it", what, about, exc_info=True)
