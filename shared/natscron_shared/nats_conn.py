"""One NATS connection per service: a FastStream broker, for its typed request/reply and
batched pull subscribers and the AsyncAPI document, with the nats-py client under it for
what FastStream cannot express (the runner's two-lane priority pull, the KV lease, KV
watches). Every JetStream publish goes through `JetStreamPublisher`, so the traffic
metrics count what really flows, whichever layer sent it.
"""

import logging
from collections.abc import Awaitable, Sequence
from typing import Any

import nats.errors
import nats.js.errors
from faststream.nats import NatsBroker
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import PubAck
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_SECONDS = 10.0
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
    url: str, app_name: str, graceful_timeout: float, middlewares: Sequence[Any] = ()
) -> NatsBroker:
    """A broker that reconnects forever and, on stop, waits up to `graceful_timeout`
    for its handlers in flight. Per-message logs go to DEBUG: at INFO they would drown
    the services' own lines."""
    return NatsBroker(
        url,
        name=app_name,
        log_level=logging.DEBUG,
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        max_reconnect_attempts=-1,
        graceful_timeout=graceful_timeout,
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


class JetStreamPublisher:
    """Publishes models to streams and waits for the ack; `msg_id` makes a retry harmless.

    Counts every publication in `natscron_jetstream_published_total` by stream and outcome
    (`stored`, `duplicate`: JetStream already had that msg id, `failed`)."""

    def __init__(self, js: JetStreamContext, registry: CollectorRegistry) -> None:
        self._js = js
        self._published = Counter(
            "natscron_jetstream_published_total",
            "JetStream publications by stream and outcome (stored, duplicate, failed)",
            ["stream", "outcome"],
            registry=registry,
        )

    async def publish(self, subject: str, model: BaseModel, msg_id: str | None = None) -> PubAck:
        headers = {MSG_ID_HEADER: msg_id} if msg_id else None
        try:
            ack: PubAck = await self._js.publish(
                subject, to_json(model), timeout=PUBLISH_TIMEOUT_SECONDS, headers=headers
            )
        except Exception:
            self._published.labels("", "failed").inc()
            raise
        self._published.labels(ack.stream, "duplicate" if ack.duplicate else "stored").inc()
        return ack


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
