"""Pulling run requests of the runner's pool: the `immediate` lane first, `normal` only
when it is empty.

Plain nats-py pull subscriptions: a FastStream subscriber consumes one subject on its
own schedule, and cannot ask "immediate first, then normal only if that was empty".
"""

import contextlib
import logging

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from prometheus_client import Counter

from natscron_shared.contract import names
from natscron_shared.contract.enums import Priority
from natscron_shared.nats.jetstream_check import NotProvisionedError, consumer_still_exists

log = logging.getLogger(__name__)

IMMEDIATE_WAIT_SECONDS = 0.05
NORMAL_WAIT_SECONDS = 0.5
"""Bounds how long a newly published immediate job waits behind an idle normal fetch."""


class Lanes:
    """Bound to the durable pull consumers of one pool that `natscron provision` creates."""

    def __init__(self, js: JetStreamContext, pool: str, received: Counter) -> None:
        self._js = js
        self._pool = pool
        self._received = received
        self._subscriptions: dict[Priority, JetStreamContext.PullSubscription] = {}

    async def bind(self) -> None:
        for priority in (Priority.IMMEDIATE, Priority.NORMAL):
            self._subscriptions[priority] = await self._js.pull_subscribe_bind(
                durable=names.runner_consumer(self._pool, priority), stream=names.STREAM_JOBS
            )

    async def ack_wait_seconds(self) -> float:
        """The shortest ack wait of the pool's consumers (`provision` sets it): how often a
        running job's message must be renewed. Read from the server, so a runner follows
        the consumers it is bound to, whatever its own settings say."""
        waits: list[float] = []
        for priority in (Priority.IMMEDIATE, Priority.NORMAL):
            info = await self._js.consumer_info(
                names.STREAM_JOBS, names.runner_consumer(self._pool, priority)
            )
            if info.config.ack_wait:
                waits.append(info.config.ack_wait)
        if not waits:
            raise NotProvisionedError(
                f"the JOBS consumers of pool {self._pool!r} have no ack wait;"
                " run `natscron provision`"
            )
        return min(waits)

    async def close(self) -> None:
        """Unsubscribe, so a stray answer to an expired fetch cannot stall a drain."""
        for subscription in self._subscriptions.values():
            with contextlib.suppress(nats.errors.Error):
                await subscription.unsubscribe()
        self._subscriptions.clear()

    async def check_consumers(self) -> None:
        """Raise `NotProvisionedError` if a lane's consumer was deleted."""
        for priority in self._subscriptions:
            await consumer_still_exists(
                self._js, names.STREAM_JOBS, names.runner_consumer(self._pool, priority)
            )

    async def fetch(self, limit: int) -> list[Msg]:
        """Up to `limit` messages; raises nats errors other than an empty fetch."""
        msgs = await self._fetch(Priority.IMMEDIATE, limit, IMMEDIATE_WAIT_SECONDS)
        if not msgs:
            msgs = await self._fetch(Priority.NORMAL, limit, NORMAL_WAIT_SECONDS)
        return msgs

    async def _fetch(self, priority: Priority, limit: int, wait: float) -> list[Msg]:
        try:
            msgs: list[Msg] = await self._subscriptions[priority].fetch(batch=limit, timeout=wait)
        except TimeoutError:
            return []
        for surplus in msgs[limit:]:
            # A fetch that timed out client-side can still be answered later; the
            # library hands those over with the next fetch, possibly too many.
            log.debug("handing back a surplus %s message", priority.value)
            with contextlib.suppress(nats.errors.Error):
                await surplus.nak()
        if msgs[:limit]:
            consumer = names.runner_consumer(self._pool, priority)
            self._received.labels(consumer).inc(len(msgs[:limit]))
        return msgs[:limit]
