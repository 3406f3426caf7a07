"""A tiny listings website for demos and tests (asyncio streams, no web framework).

`GET /listings/<slug>?type=for_sale|for_rent&page=N` serves page N of that location's
listings, with an `a.next` link on all but the last page. Unknown paths, types and
pages answer 404; set `fail_status` to make every request answer that status instead.
"""

import asyncio
import contextlib
import logging
import re
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

from shared.clock import Clock, SystemClock
from shared.demo.html import index_html, listings_html
from shared.demo.listings import LISTING_TYPES, listings_page, page_count

log = logging.getLogger(__name__)

DEMO_LOCATIONS = ("austin-tx", "denver-co")
REQUEST_TIMEOUT_SECONDS = 5.0
MAX_REQUEST_HEAD_BYTES = 8192
LISTINGS_PATH = re.compile(r"^/listings/([a-z0-9][a-z0-9-]{0,62})$")

Response = tuple[int, str]


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class DemoListingsSite:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, clock: Clock | None = None) -> None:
        self._host = host
        self._port = port
        self._clock: Clock = clock or SystemClock()
        self._server: asyncio.Server | None = None
        self.fail_status: int | None = None
        self.requested: list[str] = []

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("DemoListingsSite is not started yet")
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self._host, self._port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def route(self, target: str) -> Response:
        """Status and HTML body for a request target (path and query)."""
        if self.fail_status is not None:
            return self.fail_status, f"<h1>{self.fail_status}</h1>"
        parts = urlsplit(target)
        if parts.path == "/":
            return 200, index_html(DEMO_LOCATIONS)
        match = LISTINGS_PATH.match(parts.path)
        if match is None:
            return 404, "<h1>not found</h1>"
        query = parse_qs(parts.query)
        slug = match.group(1)
        listing_type = query.get("type", ["for_sale"])[0]
        page_text = query.get("page", ["1"])[0]
        if listing_type not in LISTING_TYPES or not page_text.isdigit():
            return 404, "<h1>no such listings</h1>"
        page, pages = int(page_text), page_count(slug, listing_type)
        if not 1 <= page <= pages:
            return 404, "<h1>no such page</h1>"
        listings = listings_page(slug, listing_type, page, self._clock.now())
        return 200, listings_html(slug, listing_type, page, pages, listings)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_SECONDS):
                head = await reader.readuntil(b"\r\n\r\n")
            method, target, *_ = head[:MAX_REQUEST_HEAD_BYTES].decode("latin-1").split(" ", 2)
            self.requested.append(target)
            status, html = self.route(target) if method in ("GET", "HEAD") else (405, "")
            body = html.encode()
            phrase = _phrase(status)
            writer.write(
                f"HTTP/1.1 {status} {phrase}\r\nContent-Type: text/html; charset=utf-8\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            )
            if method != "HEAD":
                writer.write(body)
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            log.debug("dropped a malformed or slow request")
        except ConnectionError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
