import pytest
from nats.aio.client import Client
from pymongo.asynchronous.database import AsyncDatabase

from natscron.embedded import EmbeddedServer
from natscron_recorder.mongo import Document
from natscron_shared.provision import provision

pytestmark = pytest.mark.integration


async def test_nats_server_has_jetstream_and_provisioning_is_idempotent(
    nats_server: EmbeddedServer,
) -> None:
    client = Client()
    await client.connect(nats_server.url)
    js = client.jetstream()
    await provision(js, lease_ttl_seconds=2.0)
    await provision(js, lease_ttl_seconds=3.0)
    streams = {info.config.name for info in await js.streams_info()}
    assert {"JOBS", "EVENTS", "ITEMS", "KV_scheduled_jobs", "KV_ticker_leader"} <= streams
    leader = await js.stream_info("KV_ticker_leader")
    assert leader.config.max_age == 3.0
    await client.close()


async def test_mongo_server_answers(mongo_db: AsyncDatabase[Document]) -> None:
    await mongo_db.probe.insert_one({"x": 1})
    assert await mongo_db.probe.count_documents({}) == 1
