"""Consumer lag per lane, for dashboards and alerts: how many run requests wait in each
lane's durable consumer (`num_pending`) and how many are out with a runner (unacked).

The lanes are shared by every runner, so every runner reports the same numbers; take the
`max` across instances. Asked of JetStream every `LAG_POLL_SECONDS`, not read from
fetched messages: a saturated runner stops fetching exactly when the lag matters.
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
            ["lane"],
            registry=registry,
        )
        self.ack_pending = Gauge(
            "natscron_runner_consumer_ack_pending",
            "Run requests of a lane delivered and not yet acked (running, or waiting for"
            " their redelivery)",
            ["lane"],
            registry=registry,
        )

    async def report(self, js: JetStreamContext) -> None:
        """Refresh both gauges of every lane until cancelled. A transient NATS error
        leaves the last values; a deleted consumer raises (the service stops)."""
        while True:
            for lane in Priority:
                try:
                    info = await js.consumer_info(names.STREAM_JOBS, names.runner_consumer(lane))
                except TRANSIENT_NATS_ERRORS:
                    log.debug("could not read the %s lane's consumer; keeping its lag", lane)
                    continue
                self.pending.labels(lane.value).set(info.num_pending or 0)
                self.ack_pending.labels(lane.value).set(info.num_ack_pending or 0)
            await asyncio.sleep(LAG_POLL_SECONDS)
