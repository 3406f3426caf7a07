"""Real servers for the tests: one SecantusDB per session (a fresh database per test)
and one nats-server per test (it starts in milliseconds, so no state leaks)."""

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from natscron.embedded import EmbeddedServer, start_mongo, start_nats
from natscron_recorder.mongo import Document, database_of, new_client
from natscron_shared.endpoints import Endpoints
from natscron_shared.settings import Settings


@pytest.fixture(scope="session")
async def mongo_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EmbeddedServer]:
    server = await start_mongo(tmp_path_factory.mktemp("mongo"))
    yield server
    await server.stop()


@pytest.fixture
async def nats_server(tmp_path: Path) -> AsyncIterator[EmbeddedServer]:
    server = await start_nats(tmp_path)
    yield server
    await server.stop()


@pytest.fixture
def endpoints(nats_server: EmbeddedServer, mongo_server: EmbeddedServer) -> Endpoints:
    base = mongo_server.url.rsplit("/", 1)[0]
    return Endpoints(nats_url=nats_server.url, mongo_url=f"{base}/t_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def settings(tmp_path: Path, endpoints: Endpoints) -> Settings:
    return Settings(
        nats_url=endpoints.nats_url,
        mongo_url=endpoints.mongo_url,
        data_dir=tmp_path / "data",
        http_host="127.0.0.1",
        lease_ttl_seconds=2.0,
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
