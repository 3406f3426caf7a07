"""Short-lived connections for CLI commands."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from nats.aio.client import Client

from natscron_shared.provision import provision
from natscron_shared.settings import Settings


@asynccontextmanager
async def nats_client(url: str, settings: Settings) -> AsyncIterator[Client]:
    client = Client()
    await client.connect(url, name="natscron-cli", connect_timeout=5, max_reconnect_attempts=2)
    try:
        await provision(client.jetstream(), settings.lease_ttl_seconds)
        yield client
    finally:
        await client.drain()
