"""The runner service: pulls run requests and executes at most N of them at once."""

import asyncio
import contextlib
import logging

import nats.errors
from nats.aio.msg import Msg

from natscron_runner.advertise import start_advertising
from natscron_runner.cancels import CancelBook, CancelHandler
from natscron_runner.chain_finishes import ParentFinishes
from natscron_runner.claiming import ClaimBook, claim_ttl_of
from natscron_runner.execution import JobExecutor
from natscron_runner.lane_lag import LaneLag
from natscron_runner.lanes import NORMAL_WAIT_SECONDS, Lanes
from natscron_runner.last_runs import LastRunWriter
from natscron_runner.metrics import RunnerMetrics
from natscron_runner.scrapers.polite import Politeness, PoliteSettings
from natscron_runner.scrapers.polite.kv_hosts import KvHosts
from natscron_runner.scrapers.polite.metrics import PoliteMetrics
from natscron_runner.scrapers.registry import ScraperRegistry
from natscron_runner.screenshots import ScreenshotStore
from natscron_shared.contract import names
from natscron_shared.contract.enums import Priority
from natscron_shared.contract.pools import DEFAULT_POOL
from natscron_shared.nats.connection import (
    TRANSIENT_NATS_ERRORS,
    JetStreamPublisher,
    client_of,
    jetstream_of,
    new_broker,
    received_counter,
)
from natscron_shared.nats.jetstream_check import Needs, require_provisioned
from natscron_shared.nats.jetstream_layout import CANCEL_TTL_SECONDS
from natscron_shared.nats.request_reply import MicroService
from natscron_shared.runtime.clock import Clock, SystemClock
from natscron_shared.runtime.endpoints import Endpoints
from natscron_shared.runtime.lifecycle import Service, bounded, default_instance_id
from natscron_shared.runtime.settings import Settings

log = logging.getLogger(__name__)

FETCH_ERROR_BACKOFF_SECONDS = 1.0
SERVICE_NAME = "natscron-runner"
PULL_STOP_TIMEOUT_SECONDS = NORMAL_WAIT_SECONDS + 5.0


def needs(pool: str) -> Needs:
    """What a runner of `pool` uses: its pool's two lanes among it."""
    return Needs(
        streams=(
            names.STREAM_JOBS,
            names.STREAM_EVENTS,
            names.STREAM_ITEMS,
            names.STREAM_DECISIONS,
            names.STREAM_CHAINS,
        ),
        buckets=(
            names.KV_RUNNING,
            names.KV_CANCELS,
            names.KV_LAST_RUNS,
            names.KV_HOST_SLOTS,
            names.KV_HOST_PACE,
            names.KV_HOST_BACKOFF,
            names.KV_CHECKPOINTS,
            names.KV_SCREENSHOTS,
        ),
        consumers=tuple((names.STREAM_JOBS, names.runner_consumer(pool, p)) for p in Priority),
    )


class RunnerService(Service):
    """Executes jobs of its pool (`NATSCRON_RUNNER_POOL`) from JetStream; see
    docs/architecture.md, "Runner".

    Stop: stop pulling, wait up to `shutdown_grace_seconds` for running jobs, then
    cancel the rest, whose messages go back to the queue for another runner (as the
    same attempt). Serves `jobs.cancel` (queue group `runners`) and follows KV `cancels`.
    """

    name = "runner"

    def __init__(
        self,
        settings: Settings,
        endpoints: Endpoints,
        clock: Clock | None = None,
        scrapers: ScraperRegistry | None = None,
    ) -> None:
        super().__init__()
        self._settings = settings
        self._endpoints = endpoints
        self._clock: Clock = clock or SystemClock()
        self._scrapers = scrapers or ScraperRegistry(chromium_path=settings.chromium_path)
        self.runner_id = settings.runner_id or default_instance_id()
        self.pool = settings.runner_pool
        self.metrics = RunnerMetrics.on(self.registry)
        self.lane_lag = LaneLag(self.registry)
        self._broker = new_broker(settings, endpoints.nats_url, f"natscron-runner-{self.runner_id}")
        self.cancels = CancelBook(self._clock, CANCEL_TTL_SECONDS)
        self._micro: MicroService | None = None
        self._lanes: Lanes | None = None
        self._pulling: asyncio.Task[None] | None = None
        self._jobs: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self._slot_freed = asyncio.Event()

    async def _start(self) -> None:
        await bounded(self._broker.connect(), f"NATS at {self._endpoints.nats_url}")
        js = jetstream_of(self._broker)
        if self.pool == DEFAULT_POOL:
            await require_provisioned(js, needs(self.pool), "runner")
        else:
            await require_provisioned(
                js,
                needs(self.pool),
                f"runner of pool {self.pool!r}",
                f" with NATSCRON_RUNNER_POOLS naming {self.pool!r}",
            )
        running = await js.key_value(names.KV_RUNNING)
        cancels = await js.key_value(names.KV_CANCELS)
        claims = ClaimBook(
            running, cancels, await claim_ttl_of(running), self.runner_id, self._clock, self.metrics
        )
        self.supervise("cancels", self.cancels.follow(cancels))
        await bounded(self.cancels.loaded.wait(), f"the KV {names.KV_CANCELS} watch")
        hosts = await KvHosts.open(js, self.runner_id, self._clock)
        self.supervise("host backoffs", hosts.backoffs.follow(hosts.backoffs.bucket))
        await bounded(hosts.backoffs.loaded.wait(), f"the KV {names.KV_HOST_BACKOFF} watch")
        polite = Politeness(
            hosts,
            PoliteSettings.of(self._settings),
            self._clock,
            metrics=PoliteMetrics.on(self.registry),
        )
        self._lanes = Lanes(js, self.pool, received_counter(self.registry))
        await self._lanes.bind()
        ack_wait_seconds = await self._lanes.ack_wait_seconds()
        self.supervise("lane lag", self.lane_lag.report(js, self.pool))
        publisher = JetStreamPublisher(js, self.registry)
        executor = JobExecutor(
            publisher,
            self._scrapers,
            self.metrics,
            self.runner_id,
            self._clock,
            self.cancels,
            claims,
            LastRunWriter(
                await js.key_value(names.KV_LAST_RUNS),
                self.metrics.nats_errors,
                self.metrics.bad_messages,
            ),
            polite,
            js,
            await js.key_value(names.KV_CHECKPOINTS),
            ScreenshotStore(await js.key_value(names.KV_SCREENSHOTS), self.metrics.screenshots),
            ParentFinishes(publisher, self.metrics.bad_messages),
            ack_wait_seconds,
        )
        self.cancels.on_cancel = executor.cancel
        cancel_handler = CancelHandler(js, cancels, running, self._clock, self.metrics)
        self._micro = MicroService(
            SERVICE_NAME,
            "natscron runner: cancels",
            [cancel_handler.endpoint()],
            self.registry,
            queue_group=names.RUNNER_QUEUE,
        )
        await self._micro.start(client_of(self._broker))
        advertiser = await start_advertising(
            js, self.pool, self._scrapers, self.runner_id, self._clock, self.metrics.nats_errors
        )
        self.supervise("advertise", advertiser.run())
        self._pulling = self.supervise("pull", self._pull(self._lanes, executor))
        log.info(
            "runner %s pulling from pool %s with concurrency %d (ack wait %gs)",
            self.runner_id,
            self.pool,
            self._settings.runner_concurrency,
            ack_wait_seconds,
        )

    def _readiness_problems(self) -> list[str]:
        if not client_of(self._broker).is_connected:
            return ["not connected to NATS"]
        return []

    async def _pull(self, lanes: Lanes, executor: JobExecutor) -> None:
        while not self._stopping.is_set():
            self._slot_freed.clear()
            free = self._settings.runner_concurrency - len(self._jobs)
            if free <= 0:
                await self._slot_freed.wait()
                continue
            try:
                msgs = await lanes.fetch(free)
            except TRANSIENT_NATS_ERRORS:
                self.metrics.nats_errors.labels("fetch").inc()
                log.warning("fetching run requests failed; retrying", exc_info=True)
                await lanes.check_consumers()
                await self._pause(FETCH_ERROR_BACKOFF_SECONDS)
                continue
            if self._stopping.is_set():
                for msg in msgs:
                    with contextlib.suppress(nats.errors.Error):
                        await msg.nak()
                return
            for msg in msgs:
                self._spawn(executor, msg)

    def _spawn(self, executor: JobExecutor, msg: Msg) -> None:
        task = asyncio.create_task(executor.handle(msg), name="runner-job")
        self._jobs.add(task)
        task.add_done_callback(self._job_done)

    def _job_done(self, task: asyncio.Task[None]) -> None:
        self._jobs.discard(task)
        self._slot_freed.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("a job task crashed", exc_info=task.exception())

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _stop(self) -> None:
        self._stopping.set()
        self._slot_freed.set()
        if self._pulling is not None:
            try:
                await asyncio.wait_for(self._pulling, PULL_STOP_TIMEOUT_SECONDS)
            except TimeoutError:
                log.warning("the pull loop did not stop in time; cancelled it")
            except Exception:
                log.info("the pull loop had already failed; draining the running jobs")
        if self._lanes is not None:
            await self._lanes.close()
        await self._drain_jobs()
        if self._micro is not None:
            await self._micro.stop(self._settings.shutdown_grace_seconds)
        await self._scrapers.close()
        with contextlib.suppress(nats.errors.Error):
            await client_of(self._broker).flush()
        await self._broker.stop()

    async def _drain_jobs(self) -> None:
        if not self._jobs:
            return
        log.info(
            "waiting up to %.1fs for %d running jobs",
            self._settings.shutdown_grace_seconds,
            len(self._jobs),
        )
        _, unfinished = await asyncio.wait(
            set(self._jobs), timeout=self._settings.shutdown_grace_seconds
        )
        for task in unfinished:
            task.cancel()
        if unfinished:
            log.info("handing back %d unfinished jobs", len(unfinished))
            await asyncio.gather(*unfinished, return_exceptions=True)
