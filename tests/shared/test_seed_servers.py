"""NATSCRON_NATS_URL as a comma-separated list of seed servers: each entry checked with a
sentence naming the bad one, and every natscron client (a service's broker, a service
itself, the CLI's connection, the CLI as a process) connecting while the first seed is
down."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from natscron.cli.connect import nats_client
from natscron.embedded import free_port
from natscron_runner import RunnerService
from natscron_shared.nats.connection import new_broker
from natscron_shared.nats.seed_servers import seed_servers, shown
from natscron_shared.runtime.endpoints import Endpoints
from natscron_shared.runtime.settings import Settings
from tests.cli.test_cli import cli_env, run_cli
from tests.servers import Server


def test_one_url_and_a_list_with_spaces_around_its_commas_are_taken() -> None:
    assert seed_servers("nats://a:4222") == ["nats://a:4222"]
    assert seed_servers(" nats://a:4222 ,tls://b:4223,  c:4224") == [
        "nats://a:4222",
        "tls://b:4223",
        "nats://c:4224",
    ]
    assert seed_servers("ws://a:8080/nats,wss://b") == ["ws://a:8080/nats", "wss://b"]


@pytest.mark.parametrize(
    ("urls", "said"),
    [
        ("nats://a:4222,,nats://b:4222", "entry 2 of 3 is empty"),
        ("nats://a:4222,", "entry 2 of 2 is empty"),
        (
            "nats://a:4222,htp://b:4222",
            "entry 2 of 2, 'htp://b:4222', is not a NATS server URL: its scheme must be one of",
        ),
        ("nats://a:port", "the URL, 'nats://a:port', is not a NATS server URL: Port could not"),
        ("nats://a:99999", "'nats://a:99999', is not a NATS server URL: Port out of range"),
        ("nats://a:0", "port 0 is no server's port"),
        ("nats://:4222", "'nats://:4222', is not a NATS server URL: it names no host"),
        ("nats://a b:4222", "it contains a space"),
        ("nats://a:4222/x", "it has a path ('/x'), which a nats:// or tls:// URL has not"),
        ("nats://a:4222?x=1", "it has a query or fragment"),
        ("nats://a:4222,ws://b:8080", "mixes websocket (ws://, wss://) and plain"),
        (
            "nats://me:pw@a:4222,nats://b:4222",
            "'nats://***@a:4222' carries credentials but 'nats://b:4222' does not",
        ),
    ],
)
def test_a_bad_entry_is_refused_with_a_sentence_naming_it(urls: str, said: str) -> None:
    with pytest.raises(ValueError) as refused:
        seed_servers(urls)
    assert said in str(refused.value)
    with pytest.raises(ValidationError) as in_settings:
        Settings(nats_url=urls)
    assert said in str(in_settings.value)


def test_credentials_never_reach_a_message() -> None:
    with pytest.raises(ValueError) as refused:
        seed_servers("nats://me:s3cret@a:4222,nats://you:other@b:port")
    assert "s3cret" not in str(refused.value) and "other" not in str(refused.value)
    assert shown("nats://me:s3cret@a:4222, b:4222") == "nats://***@a:4222,b:4222"
    with pytest.raises(ValidationError) as in_settings:
        Settings(nats_url="nats://me:s3cret@a:4222,nats://b:4222")
    assert "s3cret" not in str(in_settings.value)


def test_credentials_in_any_seed_url_contradict_a_credentials_setting() -> None:
    with pytest.raises(ValidationError, match="carries credentials and so does"):
        Settings(nats_url="nats://me:pw@a:4222 , nats://me:pw@b:4222", nats_token="t")


def dead_then(server: Server) -> str:
    """The seed list of the tests: a port nothing listens on, then the real server."""
    return f"nats://127.0.0.1:{free_port()}, {server.url}"


async def test_the_cli_connection_and_a_broker_connect_past_a_dead_first_seed(
    nats_server: Server,
) -> None:
    urls = dead_then(nats_server)
    settings = Settings(nats_url=urls)
    async with nats_client(urls, settings) as client:
        await client.flush(timeout=5)
        assert client.connected_url is not None
        assert client.connected_url.port == int(nats_server.url.rsplit(":", 1)[1])
    broker = new_broker(settings, urls, "natscron-seed-test")
    try:
        await broker.connect()
        assert broker.connection.is_connected
    finally:
        await broker.stop()


async def test_a_service_starts_while_its_first_seed_is_down(
    nats_server: Server, tmp_path: Path
) -> None:
    settings = Settings(
        nats_url=dead_then(nats_server), data_dir=tmp_path, shutdown_grace_seconds=1.0
    )
    endpoints = Endpoints(nats_url=dead_then(nats_server), mongo_url="mongodb://unused/x")
    runner = RunnerService(settings, endpoints)
    await runner.start()
    try:
        assert runner.is_ready(), runner.readiness_problems()
    finally:
        await runner.stop()


async def test_the_cli_process_takes_a_seed_list_and_refuses_a_bad_one(
    bare_nats_server: Server, tmp_path: Path
) -> None:
    async def provision(urls: str) -> tuple[int, str]:
        env = cli_env(NATSCRON_NATS_URL=urls, NATSCRON_DATA_DIR=str(tmp_path))
        code, out, err = await run_cli("provision", env=env)
        return code, out + err

    code, out = await provision(dead_then(bare_nats_server))
    assert code == 0, out
    assert "changed" in out
    code, out = await provision(f"{bare_nats_server.url},nats//b:4222")
    assert code == 2, out
    assert "entry 2 of 2, 'nats//b:4222', is not a NATS server URL: it has a path" in out
