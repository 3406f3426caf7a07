"""The lifecycle every service shares: new -> starting -> running -> draining -> stopped.

A service's background loops run under its supervision (`supervise`): a loop is meant
to run until the service stops, so one that returns or raises is a failure. The first
failure is logged once, turns `/healthz` unhealthy and sets `failed`, on which
`run_until_signalled` stops every service and raises, so the process exits non-zero
and an orchestrator restarts it instead of leaving a half-dead process serving 200.

`stop()` is idempotent, always ends in `stopped`, and never re-raises a loop's failure.
"""

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Coroutine, Iterator
from enum import StrEnum
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry

from natscron_shared.contract.errors import NatscronError
from natscron_shared.runtime.health_server import HealthServer

log = logging.getLogger(__name__)

T = TypeVar("T")
STARTUP_TIMEOUT_SECONDS = 30.0
LOOP_CANCEL_SECONDS = 5.0
RECANCEL_SECONDS = 0.1
STOP_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGHUP") if hasattr(signal, name)
)
"""SIGHUP too, where there is one (not on Windows): a closed terminal must stop
`natscron up` and its servers, not orphan them."""


class StartupTimeoutError(NatscronError):
    code = "startup_timeout"


class ServiceFailedError(NatscronError):
    code = "service_failed"


def default_instance_id() -> str:
    """host-pid-random: unique per process, and readable in the lease and in `runner_id`."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


async def bounded(waiting: Awaitable[T], what: str, seconds: float = STARTUP_TIMEOUT_SECONDS) -> T:
    """A start-up wait that gives up after `seconds`, saying what it waited for."""
    try:
        async with asyncio.timeout(seconds):
            return await waiting
    except TimeoutError:
        raise StartupTimeoutError(f"gave up after {seconds:.0f}s waiting for {what}") from None


class ServiceState(StrEnum):
    NEW = "new"
    STARTING = "starting"
    RUNNING = "running"
    DRAINING = "draining"
    STOPPED = "stopped"


class Service(ABC):
    """Base for the ticker, runner and recorder; subclasses implement `_start`/`_stop`,
    start their loops with `supervise` and may add `_health_problems`/`_readiness_problems`.
    """

    name: str = "service"

    def __init__(self) -> None:
        self.state = ServiceState.NEW
        self.registry = CollectorRegistry()
        self.failed = asyncio.Event()
        """Set when a supervised loop died; `failure` says which and why."""
        self.failure: str | None = None
        self._loops: dict[str, asyncio.Task[None]] = {}
        self._stop_lock = asyncio.Lock()

    async def start(self) -> None:
        if self.state is not ServiceState.NEW:
            raise NatscronError(f"{self.name} cannot start from state {self.state}")
        self.state = ServiceState.STARTING
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise
        self.state = ServiceState.RUNNING
        log.info("%s running", self.name)

    async def stop(self) -> None:
        async with self._stop_lock:
            if self.state in (ServiceState.STOPPED, ServiceState.NEW):
                self.state = ServiceState.STOPPED
                return
            self.state = ServiceState.DRAINING
            try:
                await self._stop()
            finally:
                await self._cancel_loops()
                self.state = ServiceState.STOPPED
                log.info("%s stopped", self.name)

    def supervise(self, name: str, loop: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run `loop` until the service stops; its end before that is the service's failure."""
        task = asyncio.create_task(loop, name=f"{self.name}-{name}")
        self._loops[name] = task
        task.add_done_callback(lambda done: self._loop_ended(name, done))
        return task

    def health_problems(self) -> list[str]:
        """Why the process should be restarted; empty while it is healthy."""
        problems = [self.failure] if self.failure else []
        return problems + (self._health_problems() if self.state is ServiceState.RUNNING else [])

    def readiness_problems(self) -> list[str]:
        """Why the service cannot do its work right now; empty while it can."""
        if self.state is not ServiceState.RUNNING:
            return [f"{self.name} is {self.state.value}"]
        return self.health_problems() + self._readiness_problems()

    def is_ready(self) -> bool:
        return not self.readiness_problems()

    def _health_problems(self) -> list[str]:
        return []

    def _readiness_problems(self) -> list[str]:
        return []

    def _loop_ended(self, name: str, task: asyncio.Task[None]) -> None:
        if self.state is ServiceState.DRAINING or self.failure is not None:
            return
        if task.cancelled():
            reason = "was cancelled"
        elif (error := task.exception()) is not None:
            reason = f"died: {type(error).__name__}: {error}"
            log.debug("%s loop %r traceback", self.name, name, exc_info=error)
        else:
            reason = "returned"
        self.failure = f"{self.name} loop {name!r} {reason}"
        log.error("%s; stopping the %s", self.failure, self.name)
        self.failed.set()

    async def _cancel_loops(self) -> None:
        """Cancel every loop, and again until it ends: on Python 3.11 `asyncio.wait_for`
        (under nats-py's requests) can swallow a cancellation that meets a reply, and one
        lost cancel must not hang a stop. Loops still alive after `LOOP_CANCEL_SECONDS` are
        named in the log and left behind, so the stop completes."""
        names = {task: name for name, task in self._loops.items()}
        self._loops = {}
        clock = asyncio.get_running_loop()
        deadline = clock.time() + LOOP_CANCEL_SECONDS
        pending = set(names)
        while pending and clock.time() < deadline:
            for task in pending:
                task.cancel()
            done, pending = await asyncio.wait(pending, timeout=RECANCEL_SECONDS)
            for task in done:
                if not task.cancelled():
                    task.exception()  # retrieved: its failure, if any, is already reported
        if pending:
            log.error(
                "%s: loops %s did not end when cancelled; stopping without them",
                self.name,
                ", ".join(sorted(repr(names[task]) for task in pending)),
            )

    @abstractmethod
    async def _start(self) -> None: ...

    @abstractmethod
    async def _stop(self) -> None:
        """Stop intake and drain; loops still running afterwards are cancelled."""


async def _first_signal_or_failure(
    services: list[Service], signalled: asyncio.Event
) -> Service | None:
    """Wait for a stop signal (None) or a service's failure (that service)."""
    waits = {asyncio.create_task(signalled.wait()): None} | {
        asyncio.create_task(service.failed.wait()): service for service in services
    }
    try:
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        return next((waits[task] for task in done if waits[task] is not None), None)
    finally:
        for task in waits:
            task.cancel()
        await asyncio.gather(*waits, return_exceptions=True)


@contextlib.contextmanager
def _stop_signals() -> Iterator[asyncio.Event]:
    """An event set by any of `STOP_SIGNALS`, handled from the very start, so a signal
    during start-up stops the services in order instead of killing the process."""
    loop = asyncio.get_running_loop()
    signalled = asyncio.Event()
    replaced: dict[signal.Signals, Any] = {}
    for sig in STOP_SIGNALS:
        try:
            loop.add_signal_handler(sig, signalled.set)
        except NotImplementedError:  # Windows' event loops: a plain handler wakes them too
            replaced[sig] = signal.signal(
                sig, lambda _sig, _frame: loop.call_soon_threadsafe(signalled.set)
            )
    try:
        yield signalled
    finally:
        for sig in STOP_SIGNALS:
            if sig in replaced:
                signal.signal(sig, replaced[sig])
            else:
                loop.remove_signal_handler(sig)


async def serve_health(service: Service, host: str, port: int) -> HealthServer:
    server = HealthServer(
        service.registry, service.health_problems, service.readiness_problems, host, port
    )
    await server.start()
    log.info("%s health and metrics on http://%s:%d/metrics", service.name, host, server.port)
    return server


async def run_until_signalled(services: list[Service], host: str, port: int) -> None:
    """Start services with their health servers, run until a stop signal or a service's
    failure, then stop them in reverse order; a failure is raised as `ServiceFailedError`."""
    health: list[HealthServer] = []
    started: list[Service] = []
    failed: Service | None = None
    with _stop_signals() as signalled:
        try:
            for index, service in enumerate(services):
                if signalled.is_set():
                    break
                health.append(await serve_health(service, host, port if index == 0 else 0))
                await service.start()
                started.append(service)
            failed = await _first_signal_or_failure(started, signalled)
            log.info("%s; stopping", "a service failed" if failed else "signal received")
        finally:
            for service in reversed(started):
                await service.stop()
            for server in health:
                await server.stop()
    if failed is not None:
        raise ServiceFailedError(failed.failure or f"{failed.name} failed")
