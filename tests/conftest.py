"""Real servers for the tests: one MongoDB-protocol server per session (a fresh database
per test) and one nats-server per test (it starts in milliseconds, so no state leaks),
provisioned as `natscron provision` would; `bare_nats_server` is one that is not."""

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from pathlib import Path
from typing import Any

import httpx
import pytest
from nats.aio.client import Client
from pymongo.asynchronous.database import AsyncDatabase

from natscron.provisioning.provision import provision
from natscron_api import ApiService
from natscron_runner import RunnerService
from natscron_runner.scrapers.registry import ScraperRegistry
from natscron_shared.contract.storage import Document
from natscron_shared.nats.jetstream_layout import jetstream_layout
from natscron_shared.runtime.clock import ManualClock
from natscron_shared.runtime.endpoints import Endpoints
from natscron_shared.runtime.mongo import database_of, new_client
from natscron_shared.runtime.settings import Settings
from natscron_ticker import TickerService
from tests.api.api_support import api_settings, client, running_api

# PostgreSQL, for the migration from the sources that keep their schedules there.
from tests.postgres import postgres_database as postgres_database
from tests.postgres import postgres_server as postgres_server
from tests.postgres import postgres_url as postgres_url
from tests.servers import Server, start_mongo_server, start_nats_server, with_database

# The hooks that check and report the NATSCRON_TEST_SERVERS choice: pytest finds them here.
from tests.servers import pytest_configure as pytest_configure
from tests.servers import pytest_report_header as pytest_report_header

SERVER_FIXTURES = frozenset({"mongo_server", "bare_nats_server", "postgres_server"})
"""Every server a test can get comes through one of these."""
NO_SKIPS = "NATSCRON_TEST_NO_SKIPS"
"""Set by `.ci/run`: there a skip is a missing install step, and fails the test."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that gets a server is an integration test, whether or not its module says so:
    `make unit-fast` (`-m "not integration"`) runs the rest."""
    for item in items:
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.skipped and os.environ.get(NO_SKIPS) and not item.get_closest_marker("may_skip"):
        report.outcome = "failed"
        report.longrepr = (
            f"skipped where skips are refused ({NO_SKIPS} is set): {_skip_reason(report)};"
            " `make test` installs what the tests need"
        )
    return report


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    return str(longrepr[2]) if isinstance(longrepr, tuple) else str(longrepr)


@pytest.fixture(scope="session")
async def mongo_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    server = await start_mongo_server(tmp_path_factory.mktemp("mongo"))
    yield server
    await server.stop()


LEASE_TTL_SECONDS = 2.0


@pytest.fixture
async def bare_nats_server(tmp_path: Path) -> AsyncIterator[Server]:
    server = await start_nats_server(tmp_path)
    yield server
    await server.stop()


@pytest.fixture
async def nats_server(bare_nats_server: Server) -> Server:
    client = Client()
    await client.connect(bare_nats_server.url)
    try:
        await provision(client.jetstream(), jetstream_layout(1, LEASE_TTL_SECONDS))
    finally:
        await client.close()
    return bare_nats_server


@pytest.fixture
async def nc(nats_server: Server) -> AsyncIterator[Client]:
    """The test's own NATS client, on the provisioned server."""
    client = Client()
    await client.connect(nats_server.url)
    yield client
    await client.close()


@pytest.fixture
def endpoints(nats_server: Server, mongo_server: Server) -> Endpoints:
    mongo_url = with_database(mongo_server.url, f"t_{uuid.uuid4().hex[:12]}")
    return Endpoints(nats_url=nats_server.url, mongo_url=mongo_url)


@pytest.fixture
def settings(tmp_path: Path, endpoints: Endpoints) -> Settings:
    return Settings(
        nats_url=endpoints.nats_url,
        mongo_url=endpoints.mongo_url,
        data_dir=tmp_path / "data",
        http_host="127.0.0.1",
        lease_ttl_seconds=LEASE_TTL_SECONDS,
        runner_concurrency=4,
        shutdown_grace_seconds=5.0,
    )


@pytest.fixture
async def mongo_db(endpoints: Endpoints) -> AsyncIterator[AsyncDatabase[Document]]:
    client = new_client(endpoints.mongo_url)
    db = database_of(client)
    yield db
    await client.drop_database(db.name)
    await client.close()


StartTicker = Callable[..., Awaitable[TickerService]]


@pytest.fixture
async def start_ticker(settings: Settings, endpoints: Endpoints) -> AsyncIterator[StartTicker]:
    tickers: list[TickerService] = []

    async def start(
        clock: ManualClock | None = None, ticker_id: str | None = None
    ) -> TickerService:
        own = settings.model_copy(update={"ticker_id": ticker_id})
        ticker = TickerService(own, endpoints, clock=clock)
        tickers.append(ticker)
        await ticker.start()
        return ticker

    yield start
    for ticker in tickers:
        await ticker.stop()


StartRunner = Callable[..., Awaitable[RunnerService]]


@pytest.fixture
async def start_runner(settings: Settings, endpoints: Endpoints) -> AsyncIterator[StartRunner]:
    """Starts in-process runners (settings overridden by keyword, `scrapers` a registry of
    their own); stops them at the end."""
    started: list[RunnerService] = []

    async def start(scrapers: ScraperRegistry | None = None, **overrides: Any) -> RunnerService:
        runner = RunnerService(settings.model_copy(update=overrides), endpoints, scrapers=scrapers)
        started.append(runner)
        await runner.start()
        return runner

    yield start
    for runner in started:
        await runner.stop()


@pytest.fixture
async def api(settings: Settings, endpoints: Endpoints) -> AsyncIterator[ApiService]:
    """The API service on the test's servers, with static tokens (`tests.api.api_support`)."""
    async with running_api(api_settings(settings), endpoints) as service:
        yield service


@pytest.fixture
async def http(api: ApiService) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of `api` with a write token."""
    async with client(api) as session:
        yield session
