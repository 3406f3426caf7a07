"""The ticker service: follows the schedules, fires due slots while it holds the lease,
and answers `jobs.trigger`, `jobs.backfill`, `natscron.ticker.status` and its presence
subject whether it leads or not, as the micro service `natscron-ticker`."""

from nats.js.kv import KeyValue

from natscron_shared.contract import names
from natscron_shared.nats.connection import JetStreamPublisher, client_of, jetstream_of, new_broker
from natscron_shared.nats.jetstream_check import Needs, require_provisioned
from natscron_shared.nats.job_events import last_job_event
from natscron_shared.nats.kv_watch import bucket_ttl
from natscron_shared.nats.request_reply import MicroService
from natscron_shared.nats.scrapers_bucket import load_catalogue
from natscron_shared.runtime.clock import Clock, SystemClock
from natscron_shared.runtime.endpoints import Endpoints
from natscron_shared.runtime.lifecycle import Service, bounded, default_instance_id
from natscron_shared.runtime.settings import Settings
from natscron_ticker.backfill import BackfillHandler, events_history
from natscron_ticker.book import ScheduleBook
from natscron_ticker.bulk_publish import BulkPublisher
from natscron_ticker.chain_decisions import ChainDecisions
from natscron_ticker.chains import ChainFollower
from natscron_ticker.last_runs import LastRunMirror
from natscron_ticker.lease import LeaderLease
from natscron_ticker.metrics import SLOTS_FIRED_TOTAL, TickerMetrics
from natscron_ticker.publishing import JobPublisher
from natscron_ticker.scheduler import Scheduler
from natscron_ticker.state import TickerStateStore
from natscron_ticker.state_mirror import StateMirror
from natscron_ticker.status_reply import TickerStatusReply
from natscron_ticker.trigger import TriggerHandler
from natscron_ticker.watch import follow_schedules
from natscron_ticker.watchdog import watch_watchdog

NEEDS = Needs(
    streams=(names.STREAM_JOBS, names.STREAM_EVENTS, names.STREAM_DECISIONS, names.STREAM_CHAINS),
    buckets=(
        names.KV_SCHEDULED_JOBS,
        names.KV_TICKER_LEADER,
        names.KV_TICKER_STATE,
        names.KV_LAST_RUNS,
        names.KV_CHAIN_STATE,
    ),
    consumers=((names.STREAM_CHAINS, names.CHAINS_CONSUMER),),
)

SERVICE_NAME = "natscron-ticker"


async def lease_ttl_of(bucket: KeyValue) -> float:
    """The lease lasts as long as the bucket keeps a value: its TTL, set by `provision`."""
    return await bucket_ttl(
        bucket, names.KV_TICKER_LEADER, "a dead leader's lease would never expire"
    )


class TickerService(Service):
    """See docs/architecture.md, "Ticker". Stop: stop firing, then release the lease so
    a standby takes over at once instead of after the TTL."""

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
        self.states = StateMirror()
        self.last_runs = LastRunMirror(self.book.touch, self.metrics.bad_last_runs)
        self._scheduler: Scheduler | None = None
        self.status = TickerStatusReply(
            self.ticker_id,
            lambda: self.is_leader,
            lambda: len(self.book),
            self._clock,
            last_check=lambda: None if self._scheduler is None else self._scheduler.last_check,
            slots_fired=lambda: int(self.registry.get_sample_value(SLOTS_FIRED_TOTAL) or 0),
        )
        self._broker = new_broker(settings, endpoints.nats_url, f"natscron-ticker-{self.ticker_id}")
        self._micro: MicroService | None = None
        self._lease: LeaderLease | None = None
        self._bulk: BulkPublisher | None = None

    @property
    def is_leader(self) -> bool:
        return self._lease is not None and self._lease.is_leader

    async def _start(self) -> None:
        await bounded(self._broker.connect(), f"NATS at {self._endpoints.nats_url}")
        js = jetstream_of(self._broker)
        await require_provisioned(js, NEEDS, "ticker")
        specs = await js.key_value(names.KV_SCHEDULED_JOBS)
        leader_bucket = await js.key_value(names.KV_TICKER_LEADER)
        jetstream = JetStreamPublisher(js, self.registry)
        bulk = BulkPublisher(client_of(self._broker), jetstream.count)
        await bulk.start()
        self._bulk = bulk
        publisher = JobPublisher(jetstream, bulk)
        self._lease = LeaderLease(
            leader_bucket,
            client_of(self._broker),
            self.ticker_id,
            await lease_ttl_of(leader_bucket),
            on_change=self._lease_changed,
        )
        state_bucket = await js.key_value(names.KV_TICKER_STATE)
        scheduler = Scheduler(
            self.book,
            self._lease,
            self.states,
            TickerStateStore(state_bucket, bulk),
            publisher,
            self._clock,
            self.metrics,
            self.last_runs.get,
        )
        self._scheduler = scheduler
        triggers = TriggerHandler(
            specs,
            publisher,
            self._clock,
            self.metrics,
            catalogue=lambda: load_catalogue(js),
            last_event=lambda job_id: last_job_event(js, job_id),
            is_parent=self.book.is_parent,
        )
        backfills = BackfillHandler(
            specs,
            jetstream,
            self._clock,
            self.metrics,
            last_event=lambda job_id: last_job_event(js, job_id),
            history=lambda: events_history(js),
            is_parent=self.book.is_parent,
        )
        chains = ChainFollower(
            js,
            self.book,
            self._lease,
            publisher,
            self._clock,
            self.metrics,
            ChainDecisions(publisher, self.metrics),
        )
        self._micro = MicroService(
            SERVICE_NAME,
            "natscron ticker: triggers, backfills, status and presence",
            [
                triggers.endpoint(),
                backfills.endpoint(),
                self.status.endpoint(),
                self._lease.presence_endpoint(),
            ],
            self.registry,
            queue_group=names.TICKER_QUEUE,
        )
        await self._micro.start(client_of(self._broker))
        self.supervise("watch", follow_schedules(js, self.book, self.metrics))
        self.supervise("watchdog", watch_watchdog(js, self.book))
        self.supervise("states", self.states.follow(state_bucket))
        self.supervise("last runs", self.last_runs.follow(await js.key_value(names.KV_LAST_RUNS)))
        await bounded(self.states.loaded.wait(), f"the KV {names.KV_TICKER_STATE} watch")
        await bounded(self.last_runs.loaded.wait(), f"the KV {names.KV_LAST_RUNS} watch")
        self.supervise("lease", self._lease.run())
        self.supervise("scheduler", scheduler.run())
        self.supervise("chains", chains.run())

    def _lease_changed(self, leading: bool) -> None:
        self.metrics.leader.set(1 if leading else 0)
        self.status.lease_changed(leading)
        self.metrics.lease_changes.labels("acquired" if leading else "lost").inc()

    def _readiness_problems(self) -> list[str]:
        if not client_of(self._broker).is_connected:
            return ["not connected to NATS"]
        if not self.book.loaded.is_set():
            # A million specs take seconds to load; the ticker leads, and fires the jobs
            # it has, meanwhile.
            return [f"loading the scheduled jobs: {len(self.book)} so far"]
        return []

    async def _stop(self) -> None:
        await self._cancel_loops()
        if self._lease is not None:
            await self._lease.release()
        if self._micro is not None:
            await self._micro.stop(self._settings.shutdown_grace_seconds)
        if self._bulk is not None:
            await self._bulk.stop()
        await self._broker.stop()
