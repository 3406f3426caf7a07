"""The API service: uvicorn serving the HTTP face and the NATS micro face (`natscron.api.*`)
over the same `Operations`, inside the lifecycle every service shares.

Stateless, so any number of replicas can run: everything it answers comes from MongoDB,
KV and the services behind `jobs.trigger` / `jobs.cancel`. It binds its socket itself
(`NATSCRON_API_HOST:NATSCRON_API_PORT`), so a busy port is a clear start-up error and port 0
a free one; uvicorn runs as a supervised loop without its own signal handlers, so SIGTERM
goes through `run_until_signalled` like in every service: stop taking connections, let the
requests in flight finish (up to the shutdown grace), close NATS and MongoDB.
"""

import asyncio
import contextlib
import errno
import ipaddress
import logging
import socket
from collections.abc import Callable, Iterator

import uvicorn
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from natscron_api.auth import Authenticator
from natscron_api.http_app import create_app
from natscron_api.micro import micro_face
from natscron_api.operations import Operations
from natscron_shared.contract import names
from natscron_shared.contract.errors import NatscronError
from natscron_shared.contract.storage import Document
from natscron_shared.nats.connection import client_of, jetstream_of, new_broker
from natscron_shared.nats.jetstream_check import Needs, require_provisioned
from natscron_shared.nats.request_reply import MicroService
from natscron_shared.runtime.clock import Clock, SystemClock
from natscron_shared.runtime.endpoints import Endpoints
from natscron_shared.runtime.lifecycle import Service, bounded
from natscron_shared.runtime.mongo import database_of, new_client
from natscron_shared.runtime.settings import Settings

log = logging.getLogger(__name__)

NEEDS = Needs(
    streams=(names.STREAM_JOBS, names.STREAM_EVENTS, names.STREAM_ITEMS),
    buckets=(
        names.KV_SCHEDULED_JOBS,
        names.KV_TICKER_LEADER,
        names.KV_TICKER_STATE,
        names.KV_RUNNING,
        names.KV_SCRAPERS,
        names.KV_LAST_RUNS,
        names.KV_SCREENSHOTS,
    ),
)
APPNAME = "natscron-api"
MONGO_CHECK_SECONDS = 5.0
MONGO_PING_TIMEOUT_SECONDS = 5.0


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: the service's lifecycle owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ApiService(Service):
    """`announce` is told the API's URL once it listens (`natscron up` prints it);
    `free_port_if_busy` takes a free port when the configured one is taken (for `up`)."""

    name = "api"

    def __init__(
        self,
        settings: Settings,
        endpoints: Endpoints,
        clock: Clock | None = None,
        *,
        host: str | None = None,
        free_port_if_busy: bool = False,
        announce: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__()
        self._auth = Authenticator.from_settings(settings)
        self._settings = settings
        self._endpoints = endpoints
        self._clock: Clock = clock or SystemClock()
        self._host = host or settings.api_host
        self._free_port_if_busy = free_port_if_busy
        self._announce = announce
        self._broker = new_broker(settings, endpoints.nats_url, "natscron-api")
        self._mongo: AsyncMongoClient[Document] | None = None
        self._mongo_problem: str | None = "MongoDB not checked yet"
        self._server: _Server | None = None
        self._serving: asyncio.Task[None] | None = None
        self._micro: MicroService | None = None
        self._operations: Operations | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self._host in ("0.0.0.0", "") else self._host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    async def _start(self) -> None:
        await bounded(self._broker.connect(), f"NATS at {self._endpoints.nats_url}")
        await require_provisioned(jetstream_of(self._broker), NEEDS, "API")
        self._mongo = new_client(self._endpoints.mongo_url, appname=APPNAME)
        db = database_of(self._mongo)
        await self._check_mongo(db)
        operations = Operations.over(client_of(self._broker), db, self._clock, self.registry)
        self._operations = operations
        self.supervise("schedule directory", self._follow_schedules(operations, db))
        self._micro = micro_face(operations, self.registry)
        await self._micro.start(client_of(self._broker))
        app = create_app(
            operations,
            self._auth,
            self.health_problems,
            self.readiness_problems,
            self.registry,
            cors_origins=self._settings.api_cors_origin_list,
            grafana_url=self._settings.grafana_url,
        )
        listening = self._listen()
        self.port = listening.getsockname()[1]
        config = uvicorn.Config(
            app,
            lifespan="off",
            log_config=None,
            access_log=False,
            http="h11",
            ws="none",
            server_header=False,
            timeout_graceful_shutdown=max(1, round(self._settings.shutdown_grace_seconds)),
        )
        self._server = _Server(config)
        self._serving = self.supervise("http", self._server.serve(sockets=[listening]))
        await bounded(self._until_listening(), "the API's HTTP server")
        self.supervise("mongo check", self._watch_mongo(db))
        log.info("API on %s (docs at /docs), auth: %s", self.url, ", ".join(self._auth.methods))
        if self._auth.open and not _loopback(self._host):
            log.warning(
                "the API runs without authentication (NATSCRON_API_AUTH=none) on %s,"
                " reachable from other machines",
                self._host,
            )
        if self._announce is not None:
            self._announce(self.url)

    async def _follow_schedules(self, operations: Operations, db: AsyncDatabase[Document]) -> None:
        """The directory listings page by: KV's specs as they change, and once they are
        in, the documents of those deleted from KV before (MongoDB down then: without
        them, which costs listings speed only)."""
        directory = operations.directory
        bucket = await jetstream_of(self._broker).key_value(names.KV_SCHEDULED_JOBS)
        following = asyncio.create_task(directory.follow(bucket))
        try:
            await directory.loaded.wait()
            try:
                await directory.add_inactive(db)
            except PyMongoError as exc:
                log.warning("schedule directory: deleted scheduled jobs not read: %s", exc)
            await following
        finally:
            following.cancel()

    def _listen(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        port = self._settings.api_port
        try:
            return socket.create_server((self._host, port), family=family)
        except OSError as exc:
            if self._free_port_if_busy and exc.errno == errno.EADDRINUSE:
                log.warning("port %d is taken; the API listens on a free port instead", port)
                return socket.create_server((self._host, 0), family=family)
            raise NatscronError(
                f"the API cannot listen on {self._host}:{port}: {exc.strerror or exc};"
                " set NATSCRON_API_HOST / NATSCRON_API_PORT"
            ) from exc

    async def _until_listening(self) -> None:
        assert self._server is not None and self._serving is not None
        while not self._server.started:
            if self._serving.done():
                raise NatscronError("the API's HTTP server stopped while starting")
            await asyncio.sleep(0.01)

    async def _watch_mongo(self, db: AsyncDatabase[Document]) -> None:
        while True:
            await asyncio.sleep(MONGO_CHECK_SECONDS)
            await self._check_mongo(db)

    async def _check_mongo(self, db: AsyncDatabase[Document]) -> None:
        try:
            async with asyncio.timeout(MONGO_PING_TIMEOUT_SECONDS):
                await db.command("ping")
        except (PyMongoError, TimeoutError) as exc:
            if self._mongo_problem is None or self._mongo_problem.endswith("not checked yet"):
                log.warning("MongoDB unreachable: %s", exc)
            self._mongo_problem = f"MongoDB unreachable: {type(exc).__name__}: {exc}"[:300]
        else:
            if self._mongo_problem is not None and not self._mongo_problem.endswith("yet"):
                log.info("MongoDB reachable again")
            self._mongo_problem = None

    def _readiness_problems(self) -> list[str]:
        problems = [] if client_of(self._broker).is_connected else ["not connected to NATS"]
        return problems + ([self._mongo_problem] if self._mongo_problem else [])

    async def _stop(self) -> None:
        if self._operations is not None:
            await self._operations.run_feed.close()
        if self._micro is not None:
            await self._micro.stop(self._settings.shutdown_grace_seconds)
        if self._server is not None and self._serving is not None:
            self._server.should_exit = True
            await asyncio.wait([self._serving], timeout=self._settings.shutdown_grace_seconds + 2)
        await self._broker.stop()
        if self._mongo is not None:
            await self._mongo.close()
            self._mongo = None


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
