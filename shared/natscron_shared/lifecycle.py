"""The lifecycle every service shares: new -> starting -> running -> draining -> stopped.

`stop()` is idempotent and always ends in `stopped`; `run_until_signalled` wires
SIGTERM/SIGINT to a graceful stop and serves the health endpoints meanwhile.
"""

import asyncio
import logging
import os
import secrets
import signal
import socket
from abc import ABC, abstractmethod
from enum import StrEnum

from prometheus_client import CollectorRegistry

from natscron_shared.errors import NatscronError
from natscron_shared.http_server import HealthServer

log = logging.getLogger(__name__)


def default_instance_id() -> str:
    """host-pid-random: unique per process, and readable in the lease and in `runner_id`."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class ServiceState(StrEnum):
    NEW = "new"
    STARTING = "starting"
    RUNNING = "running"
    DRAINING = "draining"
    STOPPED = "stopped"


class Service(ABC):
    """Base for the ticker, runner and recorder; subclasses implement `_start`/`_stop`."""

    name: str = "service"

    def __init__(self) -> None:
        self.state = ServiceState.NEW
        self.registry = CollectorRegistry()
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
                self.state = ServiceState.STOPPED
                log.info("%s stopped", self.name)

    def is_ready(self) -> bool:
        return self.state is ServiceState.RUNNING

    @abstractmethod
    async def _start(self) -> None: ...

    @abstractmethod
    async def _stop(self) -> None: ...


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
"""SIGHUP too: a closed terminal must stop `natscron up` and its servers, not orphan them."""


async def wait_for_signal() -> None:
    """Block until one of `STOP_SIGNALS`."""
    loop = asyncio.get_running_loop()
    received = asyncio.Event()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, received.set)
    try:
        await received.wait()
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)


async def serve_health(service: Service, host: str, port: int) -> HealthServer:
    server = HealthServer(service.registry, service.is_ready, host=host, port=port)
    await server.start()
    log.info("%s health and metrics on http://%s:%d/metrics", service.name, host, server.port)
    return server


async def run_until_signalled(services: list[Service], host: str, port: int) -> None:
    """Start services with their health servers, wait for a signal, stop in reverse order."""
    health: list[HealthServer] = []
    started: list[Service] = []
    try:
        for index, service in enumerate(services):
            health.append(await serve_health(service, host, port if index == 0 else 0))
            await service.start()
            started.append(service)
        await wait_for_signal()
        log.info("signal received; stopping")
    finally:
        for service in reversed(started):
            await service.stop()
        for server in health:
            await server.stop()
