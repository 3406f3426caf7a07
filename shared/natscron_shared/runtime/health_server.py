"""A tiny HTTP server for `/metrics`, `/healthz` and `/readyz`.

Three fixed GET routes do not justify a web framework; asyncio streams suffice
(`GetServer` also serves the demo listings site).
"""

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from http import HTTPStatus

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

MAX_REQUEST_HEAD_BYTES = 8192
REQUEST_TIMEOUT_SECONDS = 5.0


class GetServer(ABC):
    """Listens on host:port and answers each GET or HEAD with `respond`."""

    def __init__(self, host: str, port: int) -> None:
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started yet")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self._host, self._port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    @abstractmethod
    def respond(self, target: str) -> tuple[int, str, bytes]:
        """Request target (path and query) -> (status, content type, body)."""

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await answer_get(reader, writer, self.respond)


Problems = Callable[[], list[str]]
"""What is wrong right now, one sentence each; empty when all is well."""


class HealthServer(GetServer):
    """Serves one service's registry. `/healthz` answers 503 while `health` reports a
    problem (a dead loop: restart me), `/readyz` while `readiness` does (not ready for
    work yet, or for now); the body says why."""

    def __init__(
        self,
        registry: CollectorRegistry,
        health: Problems,
        readiness: Problems,
        host: str = "0.0.0.0",
        port: int = 0,
    ) -> None:
        super().__init__(host, port)
        self._registry = registry
        self._health = health
        self._readiness = readiness

    def respond(self, target: str) -> tuple[int, str, bytes]:
        path = target.split("?", 1)[0]
        if path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest(self._registry)
        if path == "/healthz":
            return _verdict(self._health(), "ok")
        if path == "/readyz":
            return _verdict(self._readiness(), "ready")
        return 404, "text/plain", b"not found\n"


def _verdict(problems: list[str], fine: str) -> tuple[int, str, bytes]:
    if not problems:
        return 200, "text/plain", f"{fine}\n".encode()
    return 503, "text/plain", "".join(f"{problem}\n" for problem in problems).encode()


Route = Callable[[str], tuple[int, str, bytes]]
"""Request target -> (status, content type, body)."""


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


async def answer_get(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, route: Route
) -> None:
    """Answer one GET or HEAD request with `route`, then close the connection."""
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT_SECONDS):
            head = await reader.readuntil(b"\r\n\r\n")
        method, target, *_ = head[:MAX_REQUEST_HEAD_BYTES].decode("latin-1").split(" ", 2)
        status, content_type, body = (
            route(target) if method in ("GET", "HEAD") else (405, "text/plain", b"")
        )
        writer.write(
            f"HTTP/1.1 {status} {_phrase(status)}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        )
        if method != "HEAD":
            writer.write(body)
        await writer.drain()
    except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
        log.debug("dropped a malformed or slow HTTP request")
    except ConnectionError:
        pass
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
