"""The ticker service: follows the schedules, fires due slots while it holds the lease,
and answers `jobs.trigger` whether it leads or not."""

import asyncio
import contextlib
import logging

from faststream.nats import NatsBroker
from faststream.nats.annotations import NatsMessage

from natscron_shared import names
from natscron_shared.clock import Clock, SystemClock
from natscron_shared.endpoints import Endpoints
from natscron_shared.lifecycle import Service, default_instance_id
from natscron_shared.nats_conn import client_of, jetstream_of, new_broker
from natscron_shared.provision import provision
from natscron_shared.settings import Settings
from natscron_ticker.book import ScheduleBook
from natscron_ticker.lease import LeaderLease
from natscron_ticker.metrics import TickerMetrics
from natscron_ticker.publishing import JobPublisher
from natscron_ticker.scheduler import Scheduler
from natscron_ticker.state import TickerStateStore
from natscron_ticker.trigger import TriggerHandler
from natscron_ticker.watch import follow_schedules

log = logging.getLogger(__name__)


class TickerService(Service):
    """See DESIGN.md "Guarantees: Ticker". Stop: stop firing, then release the lease
    so a standby takes over at once instead of after the TTL."""

    name = "ticker"

    def __init__(
        self, settings: Settings, endpoints: Endpoints, clock: Clock | None = None
    ) -> None:
        super().__init__()
        self._settings = settings
        self._endpoints = endpoints
        self._clock: Clock = clock or SystemClock()
        self.ticker_id = settings.ticker_id or default_instance_id()
        self.metrics = TickerMetrics.on(self.registry)
        self.book = ScheduleBook()
        self._broker: NatsBroker | None = None
        self._lease: LeaderLease | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def is_leader(self) -> bool:
        return self._lease is not None and self._lease.is_leader

    async def _start(self) -> None:
        broker = new_broker(
            self._endpoints.nats_url, self.registry, f"natscron-ticker-{self.ticker_id}"
        )
        self._broker = broker
        await broker.connect()
        js = jetstream_of(broker)
        await provision(js, self._settings.lease_ttl_seconds)
        specs = await js.key_value(names.KV_SCHEDULED_JOBS)
        publisher = JobPublisher(js)
        self._lease = LeaderLease(
            await js.key_value(names.KV_TICKER_LEADER),
            self.ticker_id,
            self._settings.lease_ttl_seconds,
            on_change=self._lease_changed,
        )
        scheduler = Scheduler(
            self.book,
            self._lease,
            TickerStateStore(await js.key_value(names.KV_TICKER_STATE)),
            publisher,
            self._clock,
            self.metrics,
        )
        triggers = TriggerHandler(specs, publisher, self._clock, self.metrics)

        async def on_trigger(message: NatsMessage) -> bytes:
            return await triggers.handle(message.body)

        broker.subscriber(names.JOBS_TRIGGER, queue=names.TICKER_QUEUE)(on_trigger)
        await broker.start()
        self._tasks = [
            asyncio.create_task(follow_schedules(specs, self.book, self.metrics), name="watch"),
            asyncio.create_task(self._lease.run(), name="lease"),
            asyncio.create_task(scheduler.run(), name="scheduler"),
        ]
        await self.book.loaded.wait()
        log.info("ticker %s follows %d scheduled jobs", self.ticker_id, len(self.book))

    def _lease_changed(self, leading: bool) -> None:
        self.metrics.leader.set(1 if leading else 0)
        self.metrics.lease_changes.labels("acquired" if leading else "lost").inc()

    def is_ready(self) -> bool:
        return (
            super().is_ready()
            and self._broker is not None
            and client_of(self._broker).is_connected
            and all(not task.done() for task in self._tasks)
        )

    async def _stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._lease is not None:
            await self._lease.release()
        if self._broker is not None:
            await self._broker.stop()
            self._broker = None
