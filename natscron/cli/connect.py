"""Short-lived connections for CLI commands, authenticated as the settings say."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import nats.errors
from nats.aio.client import Client

from natscron_shared.contract.errors import NatscronError
from natscron_shared.nats.auth import connect_options
from natscron_shared.nats.seed_servers import seed_servers, shown
from natscron_shared.runtime.settings import Settings

CONNECT_TIMEOUT_SECONDS = 5


@asynccontextmanager
async def nats_client(urls: str, settings: Settings) -> AsyncIterator[Client]:
    """Connected to the first of the seed servers `urls` that answers."""
    client = Client()
    try:
        await client.connect(
            seed_servers(urls),
            name="natscron-cli",
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            max_reconnect_attempts=2,
            **connect_options(settings),
        )
    except (OSError, TimeoutError, nats.errors.Error) as exc:
        raise NatscronError(
            f"cannot connect to NATS at {shown(urls)} ({type(exc).__name__})"
        ) from None
    try:
        yield client
    finally:
        await client.drain()
