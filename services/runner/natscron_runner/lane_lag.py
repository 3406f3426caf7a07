"""Consumer lag per lane of the runner's pool, for dashboards and alerts: how many run
requests wait in each lane's durable consumer (`num_pending`) and how many are out with a
runner (unacked).

The lanes are shared by every runner of the pool, so they all report the same numbers;
take the `max` across instances, by pool and lane. Asked of JetStream every
`LAG_POLL_SECONDS`, not read from fetched messages: a saturated runner stops fetching
exactly when the lag matters.
"""

import asyncio
import logging

from nats.js import JetStreamContext
from prometheus_client import CollectorRegistry, Gauge

from natscron_shared.contract import names
from natscron_shared.contract.enums import Priority
from natscron_shared.nats.connection import TRANSIENT_NATS_ERRORS

log = logging.getLogger(__name__)

LAG_POLL_SECONDS = 5.0


class LaneLag:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.pending = Gauge(
            "natscron_runner_consumer_pending",
            "Run requests waiting in a lane's consumer, not yet delivered to a runner",
            ["pool", "lane"],
            registry=registry,
        )
        self.ack_pending = Gauge(
            "natscron_runner_consumer_ack_pending",
            "Run requests of a lane delivered and not yet acked (running, or waiting for"
            " their redelivery)",
            ["pool", "lane"],
            registry=registry,
        )

    async def report(self, js: JetStreamContext, pool: str) -> None:
        """Refresh both gauges of every lane of `pool` until cancelled. A transient NATS
        error leaves the last values; a deleted consumer raises (the service stops)."""
        while True:
            for lane in Priority:
                consumer = names.runner_consumer(pool, lane)
                try:
                    info = await js.consumer_info(names.STREAM_JOBS, consumer)
                except TRANSIENT_NATS_ERRORS:
                    log.debug("could not read consumer %s; keeping its lag", consumer)
                    continue
                self.pending.labels(pool, lane.value).set(info.num_pending or 0)
                self.ack_pending.labels(pool, lane.value).set(info.num_ack_pending or 0)
            await asyncio.sleep(LAG_POLL_SECONDS)
