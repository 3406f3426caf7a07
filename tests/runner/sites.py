"""Sites the scrapers' tests fetch from, served on 127.0.0.1 by the test itself, and a
forward proxy; each logs every request it answers (when, what, how many were in flight).

No web framework: asyncio streams, one request per connection (`Connection: close`).
"""

import asyncio
import base64
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

READ_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: str = ""
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    """Seconds the site takes to answer: requests overlap, and a runner can die mid-request."""


@dataclass(frozen=True)
class Hit:
    target: str
    """The request target as sent: a path and query, or a whole URL to a proxy."""
    at: float
    """`time.monotonic()` when the request was read."""
    in_flight: int
    """Requests being answered at that moment, this one included."""
    headers: dict[str, str]
    """Lower-cased names."""


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, dict[str, str]] | None:
    async with asyncio.timeout(READ_TIMEOUT_SECONDS):
        head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        return None
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return parts[1], headers


def _response(reply: Reply) -> bytes:
    body = reply.body.encode()
    headers = {
        "Content-Type": reply.content_type,
        "Content-Length": str(len(body)),
        "Connection": "close",
        **reply.headers,
    }
    head = f"HTTP/1.1 {reply.status} X\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (head + "\r\n").encode() + body


class Site:
    """Answers each request with `route(target)`; `hits` logs them in arrival order."""

    def __init__(self, route: Callable[[str], Reply]) -> None:
        self.route = route
        self.hits: list[Hit] = []
        self.port = 0
        self._in_flight = 0
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def fetches(self, path: str) -> int:
        return sum(1 for hit in self.hits if hit.target == path)

    def counts(self) -> Counter[str]:
        return Counter(hit.target for hit in self.hits)

    def pages(self) -> list[str]:
        """Targets requested, robots.txt left out, in arrival order."""
        return [hit.target for hit in self.hits if hit.target != "/robots.txt"]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await _read_request(reader)
            if request is None:
                return
            target, headers = request
            self._in_flight += 1
            try:
                self.hits.append(Hit(target, time.monotonic(), self._in_flight, headers))
                reply = self.route(target)
                if reply.delay:
                    await asyncio.sleep(reply.delay)
                writer.write(_response(reply))
                await writer.drain()
            finally:
                self._in_flight -= 1
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


@contextlib.asynccontextmanager
async def serving(route: Callable[[str], Reply]) -> AsyncIterator[Site]:
    site = Site(route)
    await site.start()
    try:
        yield site
    finally:
        await site.stop()


def link_page(title: str, links: list[str], delay: float = 0.0) -> Reply:
    anchors = "".join(f'<li><a href="{link}">{link}</a></li>' for link in links)
    return Reply(
        body=f"<html><head><title>{title}</title></head>"
        f"<body><h1>{title}</h1><ul>{anchors}</ul></body></html>",
        delay=delay,
    )


def graph_route(
    graph: dict[str, list[str]], robots: str | None = None, delay: float = 0.0
) -> Callable[[str], Reply]:
    """Pages `path -> links`; `/robots.txt` is `robots` (404 without); the rest 404."""

    def route(target: str) -> Reply:
        if target == "/robots.txt":
            if robots is None:
                return Reply(404, "no robots.txt", "text/plain")
            return Reply(200, robots, "text/plain")
        links = graph.get(target)
        if links is None:
            return Reply(404, "<h1>not found</h1>")
        return link_page(f"page {target}", links, delay)

    return route


PROXY_CHALLENGE = (
    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
    b'Proxy-Authenticate: Basic realm="natscron-test"\r\n'
    b"Content-Length: 0\r\nConnection: close\r\n\r\n"
)


class CountingProxy:
    """A forward HTTP proxy for http:// URLs: it relays each request to its origin and
    logs it (`hits`: the absolute URL asked for, with the Proxy-Authorization header).

    `challenge`: a request without credentials gets a 407 asking for them, not relayed (a
    browser sends its proxy credentials only when asked)."""

    def __init__(self, *, challenge: bool = False) -> None:
        self.hits: list[Hit] = []
        self._challenge = challenge
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def credentials(self) -> set[str]:
        """The user:password pairs the requests carried."""
        found = set()
        for hit in self.hits:
            scheme, _, encoded = hit.headers.get("proxy-authorization", "").partition(" ")
            if scheme.lower() == "basic":
                found.add(base64.b64decode(encoded).decode())
        return found

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await _read_request(reader)
            if request is None:
                return
            target, headers = request
            self.hits.append(Hit(target, time.monotonic(), 0, headers))
            if self._challenge and "proxy-authorization" not in headers:
                writer.write(PROXY_CHALLENGE)
                await writer.drain()
                return
            await self._relay(target, headers, writer)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _relay(self, url: str, headers: dict[str, str], writer: asyncio.StreamWriter) -> None:
        rest = url.removeprefix("http://")
        authority, _, path = rest.partition("/")
        host, _, port = authority.partition(":")
        upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port or 80))
        kept = {k: v for k, v in headers.items() if not k.startswith("proxy-")}
        kept["connection"] = "close"
        head = f"GET /{path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in kept.items())
        upstream_writer.write((head + "\r\n").encode())
        await upstream_writer.drain()
        writer.write(await upstream_reader.read())
        await writer.drain()
        upstream_writer.close()
