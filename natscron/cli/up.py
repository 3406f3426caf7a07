"""`natscron up`: the whole system on one machine, on the embedded servers by default."""

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from natscron.cli.connect import nats_client
from natscron.cli.tail import tail_runs
from natscron.embedded import start_mongo, start_nats
from natscron.provisioning.provision import provision
from natscron.stack import ENDPOINTS_FILE, LOG_FILE, hold_stack_lock, write_stack_endpoints
from natscron_shared.nats.jetstream_layout import jetstream_layout
from natscron_shared.nats.schedule_bucket import put_schedules
from natscron_shared.runtime.endpoints import Endpoints
from natscron_shared.runtime.lifecycle import Service, run_until_signalled
from natscron_shared.runtime.mongo import database_of, new_client
from natscron_shared.runtime.settings import Settings

log = logging.getLogger(__name__)


@asynccontextmanager
async def _servers(settings: Settings) -> AsyncIterator[Endpoints]:
    """Configured URLs, or embedded servers started (and stopped) here."""
    async with AsyncExitStack() as stack:
        nats_url, mongo_url = settings.nats_url, settings.mongo_url
        if nats_url is None:
            nats = await start_nats(settings.data_dir)
            stack.push_async_callback(nats.stop)
            nats_url = nats.url
            await _provision(nats_url, settings)
        if mongo_url is None:
            mongo = await start_mongo(settings.data_dir)
            stack.push_async_callback(mongo.stop)
            mongo_url = mongo.url
        endpoints = Endpoints(nats_url=nats_url, mongo_url=mongo_url)
        marker = write_stack_endpoints(settings.data_dir, endpoints)
        stack.callback(marker.unlink, missing_ok=True)
        yield endpoints


async def _provision(nats_url: str, settings: Settings) -> None:
    """The embedded server is ours, so `up` provisions it (with the pool of its runner);
    a configured one is not."""
    layout = jetstream_layout(
        settings.jetstream_replicas,
        settings.lease_ttl_seconds,
        settings.claim_ttl_seconds,
        (*settings.runner_pools, settings.runner_pool),
        settings.runner_ack_wait_seconds,
    )
    async with nats_client(nats_url, settings) as client:
        for change in await provision(client.jetstream(), layout):
            log.info("provisioning: %s", change)


async def _start_demo(settings: Settings, endpoints: Endpoints, stack: AsyncExitStack) -> None:
    from natscron.demo import DemoListingsSite, demo_schedules

    site = DemoListingsSite()
    await site.start()
    stack.push_async_callback(site.stop)
    print(f"demo listings site on {site.url}", flush=True)
    async with nats_client(endpoints.nats_url, settings) as client:
        await put_schedules(client.jetstream(), demo_schedules(site.url))


def _api(settings: Settings, endpoints: Endpoints) -> Service:
    """The API as `up` runs it: open (NATSCRON_API_AUTH=none) unless a JWT key or tokens
    are configured, on 127.0.0.1 unless NATSCRON_API_HOST says otherwise (an open API is
    for this machine only), and on a free port if NATSCRON_API_PORT is unset and 8000 taken."""
    from natscron_api import ApiService

    configured = settings.model_fields_set
    if settings.api_jwt_key is None and settings.api_tokens is None:
        settings = settings.model_copy(update={"api_auth": "none"})
    open_api = settings.api_auth == "none"

    def announce(url: str) -> None:
        auth = "no authentication" if open_api else "bearer tokens"
        print(f"API on {url} (docs at {url}/docs, {auth})", flush=True)
        print(f"Console on {url}/ui/", flush=True)

    return ApiService(
        settings,
        endpoints,
        host=None if "api_host" in configured else "127.0.0.1",
        free_port_if_busy="api_port" not in configured,
        announce=announce,
    )


def _http_host(settings: Settings) -> str:
    """The services' health and metrics servers listen where the open API does: on this
    machine only, unless NATSCRON_HTTP_HOST says otherwise."""
    return settings.http_host if "http_host" in settings.model_fields_set else "127.0.0.1"


async def up(settings: Settings, demo: bool) -> None:
    from natscron_recorder import RecorderService
    from natscron_runner import RunnerService
    from natscron_ticker import TickerService

    async with AsyncExitStack() as stack:
        stack.enter_context(hold_stack_lock(settings.data_dir))
        endpoints = await stack.enter_async_context(_servers(settings))
        print(f"NATS {endpoints.nats_url}  MongoDB {endpoints.mongo_url}", flush=True)
        print(f"(other terminals find them via {settings.data_dir / ENDPOINTS_FILE})", flush=True)
        print(f"service logs: {settings.data_dir / LOG_FILE}", flush=True)
        if demo:
            await _start_demo(settings, endpoints, stack)
        mongo = new_client(endpoints.mongo_url)
        stack.push_async_callback(mongo.close)
        tail = asyncio.create_task(tail_runs(database_of(mongo), sys.stdout))
        try:
            services = [
                RecorderService(settings, endpoints),
                RunnerService(settings, endpoints),
                TickerService(settings, endpoints),
                _api(settings, endpoints),
            ]
            print("natscron is up; Ctrl-C stops everything", flush=True)
            await run_until_signalled(services, _http_host(settings), settings.http_port)
        finally:
            tail.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await tail
    print("natscron stopped", flush=True)
