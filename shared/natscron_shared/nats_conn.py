"""One way to connect to NATS: a faststream broker, with the nats-py client under it
for what faststream does not wrap (KV watches, pull fetches, raw JetStream publishes)."""

import logging
from collections.abc import Awaitable

from faststream.nats import NatsBroker
from faststream.nats.prometheus import NatsPrometheusMiddleware
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import PubAck
from prometheus_client import CollectorRegistry
from pydantic import BaseModel

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_SECONDS = 10.0
MSG_ID_HEADER = "Nats-Msg-Id"


def new_broker(url: str, registry: CollectorRegistry, app_name: str) -> NatsBroker:
    """A broker that reconnects forever and waits for in-flight handlers on stop.

    Per-message logs go to DEBUG: at INFO they would drown the services' own lines."""
    return NatsBroker(
        url,
        name=app_name,
        log_level=logging.DEBUG,
        max_reconnect_attempts=-1,
        graceful_timeout=30.0,
        middlewares=[NatsPrometheusMiddleware(registry=registry, app_name=app_name)],
    )


def client_of(broker: NatsBroker) -> Client:
    client: Client = broker.connection
    return client


def jetstream_of(broker: NatsBroker) -> JetStreamContext:
    js: JetStreamContext = client_of(broker).jetstream()
    return js


def to_json(model: BaseModel) -> bytes:
    return model.model_dump_json().encode()


async def publish_model(
    js: JetStreamContext, subject: str, model: BaseModel, msg_id: str | None = None
) -> PubAck:
    """Publish to a stream and wait for its ack; `msg_id` makes a retry harmless."""
    headers = {MSG_ID_HEADER: msg_id} if msg_id else None
    ack: PubAck = await js.publish(
        subject, to_json(model), timeout=PUBLISH_TIMEOUT_SECONDS, headers=headers
    )
    return ack


async def settle_quietly(action: Awaitable[None], what: str, about: str) -> None:
    """Run an ack, nak or term whose failure only means a redelivery after ack_wait,
    which every consumer here handles idempotently: log it, never raise it."""
    try:
        await action
    except Exception:
        log.warning("could not %s %s; JetStream will redeliver it", what, about, exc_info=True)
