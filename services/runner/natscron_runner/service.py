"""The runner service: pulls run requests and executes at most N of them at once."""

import asyncio
import contextlib
import logging

import nats.errors
from faststream.nats import NatsBroker
from nats.aio.msg import Msg

from natscron_runner.execution import JobExecutor
from natscron_runner.lanes import NORMAL_WAIT_SECONDS, Lanes
from natscron_runner.metrics import RunnerMetrics
from natscron_runner.scrapers.registry import ScraperRegistry
from natscron_shared.clock import Clock, SystemClock
from natscron_shared.endpoints import Endpoints
from natscron_shared.lifecycle import Service, default_instance_id
from natscron_shared.nats_conn import client_of, jetstream_of, new_broker
from natscron_shared.provision import provision
from natscron_shared.settings import Settings

log = logging.getLogger(__name__)

FETCH_ERROR_BACKOFF_SECONDS = 1.0
PULL_STOP_TIMEOUT_SECONDS = NORMAL_WAIT_SECONDS + 5.0


class RunnerService(Service):
    """Executes jobs from JetStream; see DESIGN.md "Guarantees: Runner".

    Stop: stop pulling, wait up to `shutdown_grace_seconds` for running jobs, then
    cancel the rest, whose messages go back to the queue for another runner.
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
        self._scrapers = scrapers or ScraperRegistry()
        self.runner_id = settings.runner_id or default_instance_id()
        self.metrics = RunnerMetrics.on(self.registry)
        self._broker: NatsBroker | None = None
        self._lanes: Lanes | None = None
        self._pulling: asyncio.Task[None] | None = None
        self._jobs: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self._slot_freed = asyncio.Event()

    async def _start(self) -> None:
        self._broker = new_broker(
            self._endpoints.nats_url, self.registry, f"natscron-runner-{self.runner_id}"
        )
        await self._broker.connect()
        js = jetstream_of(self._broker)
        await provision(js, self._settings.lease_ttl_seconds)
        self._lanes = Lanes(js)
        await self._lanes.bind()
        executor = JobExecutor(js, self._scrapers, self.metrics, self.runner_id, self._clock)
        self._pulling = asyncio.create_task(self._pull(self._lanes, executor), name="runner-pull")
        log.info(
            "runner %s pulling with concurrency %d",
            self.runner_id,
            self._settings.runner_concurrency,
        )

    def is_ready(self) -> bool:
        return (
            super().is_ready()
            and self._broker is not None
            and client_of(self._broker).is_connected
            and self._pulling is not None
            and not self._pulling.done()
        )

    async def _pull(self, lanes: Lanes, executor: JobExecutor) -> None:
        while not self._stopping.is_set():
            self._slot_freed.clear()
            free = self._settings.runner_concurrency - len(self._jobs)
            if free <= 0:
                await self._slot_freed.wait()
                continue
            try:
                msgs = await lanes.fetch(free)
            except nats.errors.Error:
                self.metrics.nats_errors.labels("fetch").inc()
                log.warning("fetching run requests failed; retrying", exc_info=True)
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
                log.exception("the pull loop had crashed")
        if self._lanes is not None:
            await self._lanes.close()
        await self._drain_jobs()
        if self._broker is not None:
            with contextlib.suppress(nats.errors.Error):
                await client_of(self._broker).flush()
            await self._broker.stop()
            self._broker = None

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
