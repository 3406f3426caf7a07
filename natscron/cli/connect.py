"""Short-lived connections for CLI commands."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from nats.aio.client import Client

CONNECT_TIMEOUT_SECONDS = 5


@asynccontextmanager
async def nats_client(url: str) -> AsyncIterator[Client]:
    client = Client()
    await client.connect(
        url,
        name="natscron-cli",
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        max_reconnect_attempts=2,
    )
    try:
        yield client
    finally:
        await client.drain()
