"""The three services started in-process against the test's real servers."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from nats.aio.client import Client

from natscron_recorder import RecorderService
from natscron_runner import RunnerService
from natscron_shared.endpoints import Endpoints
from natscron_shared.lifecycle import Service
from natscron_shared.provision import provision
from natscron_shared.settings import Settings
from natscron_ticker import TickerService


@asynccontextmanager
async def running_stack(settings: Settings, endpoints: Endpoints) -> AsyncIterator[list[Service]]:
    services: list[Service] = [
        RecorderService(settings, endpoints),
        RunnerService(settings, endpoints),
        TickerService(settings, endpoints),
    ]
    try:
        for service in services:
            await service.start()
        yield services
    finally:
        for service in reversed(services):
            await service.stop()


@asynccontextmanager
async def nats_client(endpoints: Endpoints, settings: Settings) -> AsyncIterator[Client]:
    client = Client()
    await client.connect(endpoints.nats_url)
    await provision(client.jetstream(), settings.lease_ttl_seconds)
    try:
        yield client
    finally:
        await client.close()
