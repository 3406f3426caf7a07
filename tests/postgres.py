"""A real PostgreSQL server for the migration tests: Debian's `postgresql` package
(`make test-deps` installs it), one server per session on a free port, a fresh database per
test.

PostgreSQL refuses to run as root: as root the server runs as the `postgres` user, in a
data directory it owns; otherwise as whoever runs the tests. Like the embedded servers it
dies with the test process (`natscron.embedded.die_with_parent`), and is stopped at the end
of the session.
"""

import asyncio
import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from natscron.embedded import die_with_parent, free_port

POSTGRES_ROOT = Path("/usr/lib/postgresql")
SERVER_USER = "postgres"
READY_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0


def server_binaries() -> Path | None:
    """The newest installed server's bin directory (`/usr/lib/postgresql/15/bin`)."""
    found = sorted(POSTGRES_ROOT.glob("*/bin/postgres"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else None


@dataclass
class PostgresServer:
    url: str
    """Of the `postgres` database; `database_url` names another."""
    process: asyncio.subprocess.Process
    data_dir: Path

    def database_url(self, database: str) -> str:
        return self.url.rsplit("/", 1)[0] + f"/{database}"

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGINT)  # "fast" shutdown
            try:
                async with asyncio.timeout(STOP_TIMEOUT_SECONDS):
                    await self.process.wait()
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        shutil.rmtree(self.data_dir, ignore_errors=True)


def _as_server_user() -> dict[str, Any]:
    """Popen arguments that drop root to the `postgres` user; none for anyone else."""
    if os.getuid() != 0:
        return {}
    account = pwd.getpwnam(SERVER_USER)
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


async def start_postgres(binaries: Path) -> PostgresServer:
    data_dir = Path(tempfile.mkdtemp(prefix="natscron-pg-"))
    user = _as_server_user()
    if user:
        os.chown(data_dir, user["user"], user["group"])
    initdb = await asyncio.create_subprocess_exec(
        str(binaries / "initdb"),
        *("-A", "trust", "-U", SERVER_USER, "-E", "UTF8", "--no-sync", "-D", str(data_dir / "db")),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        **user,
    )
    _, errors = await initdb.communicate()
    if initdb.returncode != 0:
        shutil.rmtree(data_dir, ignore_errors=True)
        raise RuntimeError(f"initdb failed: {errors.decode(errors='replace')}")
    port = free_port()
    log = (data_dir / "server.log").open("ab")
    process = await asyncio.create_subprocess_exec(
        str(binaries / "postgres"),
        *("-D", str(data_dir / "db"), "-p", str(port), "-k", str(data_dir)),
        *("-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        # Popen drops to the user before it calls this: set after, the parent-death signal
        # survives (a change of credentials clears it).
        preexec_fn=die_with_parent(),
        **user,
    )
    log.close()
    url = f"postgresql://{SERVER_USER}@127.0.0.1:{port}/postgres"
    server = PostgresServer(url, process, data_dir)
    await _wait_ready(server)
    return server


async def _wait_ready(server: PostgresServer) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.process.returncode is not None:
            log = (server.data_dir / "server.log").read_text(errors="replace")
            await server.stop()
            raise RuntimeError(f"postgres exited with {server.process.returncode}: {log}")
        with contextlib.suppress(psycopg.OperationalError):
            connection = await psycopg.AsyncConnection.connect(server.url, connect_timeout=2)
            await connection.close()
            return
        await asyncio.sleep(0.1)
    await server.stop()
    raise RuntimeError(f"postgres not ready after {READY_TIMEOUT_SECONDS}s")


@pytest.fixture(scope="session")
async def postgres_server() -> AsyncIterator[PostgresServer]:
    binaries = server_binaries()
    if binaries is None:
        pytest.skip("no PostgreSQL server installed (Debian's postgresql: `make test-deps`)")
    server = await start_postgres(binaries)
    yield server
    await server.stop()


NewDatabase = Callable[[], Awaitable[str]]


@pytest.fixture
async def postgres_database(postgres_server: PostgresServer) -> AsyncIterator[NewDatabase]:
    """Creates fresh databases (their URLs), dropped after the test."""
    created: list[str] = []

    async def create() -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        await _admin(postgres_server, f'CREATE DATABASE "{name}"')
        created.append(name)
        return postgres_server.database_url(name)

    yield create
    for name in created:
        await _admin(postgres_server, f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
async def postgres_url(postgres_database: NewDatabase) -> str:
    """The URL of a fresh database, dropped after the test."""
    return await postgres_database()


async def _admin(server: PostgresServer, statement: str) -> None:
    async with await psycopg.AsyncConnection.connect(server.url, autocommit=True) as admin:
        await admin.execute(statement.encode())
