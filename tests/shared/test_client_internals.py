"""`natscron_shared.nats.client_internals`: the nats-py version it refuses, how the refusal
reaches a starting service, every private attribute of a connected nats-py `Client` it
touches (there, and of the shape `write_frames` relies on), `write_frames` itself, and
that no other module of ours touches nats-py's private attributes."""

import ast
import asyncio
import contextlib
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import nats
import nats.errors
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from natscron_shared.nats import client_internals
from natscron_shared.nats.client_internals import (
    TESTED_NATS_PY,
    UnsupportedNatsPyError,
    check_nats_py,
    write_frames,
)
from tests.servers import Server, start_nats_server
from tests.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
SUBJECT = "test.internals"
PENDING_SIZE = 4_096


def frame(payload: bytes, subject: str = SUBJECT) -> bytes:
    return b"PUB %b %d\r\n%b\r\n" % (subject.encode(), len(payload), payload)


class Received:
    """What a subscription on `SUBJECT` got, in order."""

    def __init__(self) -> None:
        self.payloads: list[bytes] = []

    async def take(self, msg: Msg) -> None:
        self.payloads.append(msg.data)

    async def count(self) -> int:
        return len(self.payloads)


@pytest.fixture
async def received(nc: Client) -> Received:
    got = Received()
    await nc.subscribe(SUBJECT, cb=got.take)
    await nc.flush()
    return got


async def is_connected(client: Client) -> bool:
    return client.is_connected


# The version check


def test_the_installed_nats_py_is_the_tested_one() -> None:
    assert version("nats-py") == TESTED_NATS_PY


@pytest.mark.parametrize("installed", ["2.16.1", "2.17.0", "2.15.0"])
def test_any_other_nats_py_is_refused_with_a_sentence_naming_the_tested_one(
    installed: str,
) -> None:
    with pytest.raises(UnsupportedNatsPyError) as refused:
        check_nats_py(installed)
    message = str(refused.value)
    assert f"nats-py {installed} is installed" in message
    assert f"nats-py {TESTED_NATS_PY} only" in message
    assert "\n" not in message


def test_a_service_refuses_to_start_with_one_line_and_status_1() -> None:
    """`natscron ticker` under another nats-py: one sentence on stderr, no traceback."""
    fake_version = (
        "import importlib.metadata as metadata\n"
        "real = metadata.version\n"
        "metadata.version = lambda name: '2.99.0' if name == 'nats-py' else real(name)\n"
        "from natscron.cli.main import app\n"
        "app(['ticker'])\n"
    )
    environment = {key: value for key, value in os.environ.items() if "NATSCRON" not in key}
    environment |= {
        "NATSCRON_NATS_URL": "nats://127.0.0.1:1",
        "NATSCRON_MONGO_URL": "mongodb://127.0.0.1:1",
    }
    done = subprocess.run(
        [sys.executable, "-c", fake_version],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines() == [
        "natscron: nats-py 2.99.0 is installed, but natscron writes to nats-py's connection"
        f" internals as tested with nats-py {TESTED_NATS_PY} only: install natscron with its"
        f" pinned dependencies (nats-py=={TESTED_NATS_PY})"
    ]


# Each private attribute `write_frames` touches, on a connected client


async def test_transport_is_set_while_connected_and_writes_frames_to_the_server(
    nc: Client, received: Received
) -> None:
    assert nc.is_connected
    assert nc._transport is not None
    nc._transport.write(frame(b"direct"))
    await eventually(received.count, lambda count: count == 1, what="the direct write")
    assert received.payloads == [b"direct"]


async def test_pending_holds_the_queued_commands_until_the_flusher_writes_them(
    nc: Client, received: Received
) -> None:
    assert nc._pending == []
    assert nc._pending_data_size == 0
    await nc.publish(SUBJECT, b"queued")
    assert len(nc._pending) == 1
    assert nc._pending[0].startswith(b"PUB ") and nc._pending[0].endswith(b"queued\r\n")
    assert nc._pending_data_size == len(nc._pending[0])
    await eventually(received.count, lambda count: count == 1, what="the queued publish")
    assert nc._pending == []
    assert nc._pending_data_size == 0


async def test_max_pending_size_is_the_pending_size_option(nats_server: Server) -> None:
    client = await nats.connect(nats_server.url, pending_size=PENDING_SIZE)
    try:
        assert client._max_pending_size == PENDING_SIZE
    finally:
        await client.close()


async def test_send_command_queues_a_frame_and_counts_its_bytes_without_a_kick(
    nc: Client, received: Received
) -> None:
    await nc._send_command(frame(b"held"))
    assert nc._pending == [frame(b"held")]
    assert nc._pending_data_size == len(frame(b"held"))
    assert nc._flush_queue is not None and nc._flush_queue.empty()
    await nc.flush()
    await eventually(received.count, lambda count: count == 1, what="the flushed command")


async def test_flush_queue_is_empty_while_the_flusher_is_idle_and_not_after_a_kick(
    nc: Client,
) -> None:
    assert isinstance(nc._flush_queue, asyncio.Queue)
    assert nc._flush_queue.empty()
    await nc.publish(SUBJECT, b"kick")
    assert not nc._flush_queue.empty()
    await nc.flush()
    assert nc._flush_queue.empty()


async def test_flush_pending_has_the_flusher_write_what_is_queued(
    nc: Client, received: Received
) -> None:
    await nc._send_command(frame(b"one"))
    await nc._send_command(frame(b"two"))
    await nc._flush_pending()
    await eventually(received.count, lambda count: count == 2, what="the flushed commands")
    assert received.payloads == [b"one", b"two"]
    assert nc._pending == []


# write_frames


async def test_frames_go_straight_to_the_transport_when_nothing_is_queued(
    nc: Client, received: Received
) -> None:
    await write_frames(nc, frame(b"a") + frame(b"b"))
    assert nc._pending == []
    await eventually(received.count, lambda count: count == 2, what="the frames")
    assert received.payloads == [b"a", b"b"]


async def test_frames_go_behind_what_is_queued(nc: Client, received: Received) -> None:
    await nc.publish(SUBJECT, b"first")
    await write_frames(nc, frame(b"second"))
    await eventually(received.count, lambda count: count == 2, what="both messages")
    assert received.payloads == [b"first", b"second"]


async def test_a_closed_connection_refuses_frames(nats_server: Server) -> None:
    client = await nats.connect(nats_server.url)
    await client.close()
    with pytest.raises(nats.errors.ConnectionClosedError):
        await write_frames(client, frame(b"late"))


@pytest.mark.integration
async def test_while_reconnecting_frames_wait_in_the_buffer_within_its_limit(
    tmp_path: Path,
) -> None:
    server = await start_nats_server(tmp_path)
    stopped = False
    try:
        client = await nats.connect(
            server.url,
            pending_size=PENDING_SIZE,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.1,
        )
        try:
            await server.stop()
            stopped = True
            await eventually(lambda: is_connected(client), lambda up: not up, what="a disconnect")
            await write_frames(client, frame(b"buffered"))
            assert client._pending[-1] == frame(b"buffered")
            assert client._pending_data_size >= len(frame(b"buffered"))
            with pytest.raises(nats.errors.OutboundBufferLimitError):
                await write_frames(client, frame(b"x" * PENDING_SIZE))
        finally:
            # nats-py's close writes what is buffered to the lost connection, and fails
            # with it, as it does after a plain `publish` while reconnecting.
            with contextlib.suppress(ConnectionResetError):
                await client.close()
    finally:
        if not stopped:
            await server.stop()


# Nothing else touches them


def nats_py_private_names() -> set[str]:
    """Every `_name` nats-py gives its own objects (`self._name`) or defines (`def _name`)."""
    names: set[str] = set()
    for path in Path(nats.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and on_self(node):
                names.add(node.attr)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                names.add(node.name)
    return {name for name in names if name.startswith("_") and not name.startswith("__")}


def on_self(node: ast.Attribute) -> bool:
    return isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")


def test_no_other_module_touches_nats_py_private_attributes() -> None:
    """Outside the adapter (and this test), `<something>._name` with a name nats-py keeps
    private is read as a use of nats-py's internals; on `self` or `cls` it is our own."""
    private = nats_py_private_names()
    allowed = {Path(client_internals.__file__).resolve(), Path(__file__).resolve()}
    found = []
    for folder in ("shared", "services", "natscron", "bench", "tests"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.resolve() in allowed:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Attribute) and node.attr in private and not on_self(node):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} {ast.unparse(node)}")
    assert found == [], "nats-py internals outside client_internals.py"
