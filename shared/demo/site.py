"""A tiny listings website for demos and tests (asyncio streams, no web framework).

`GET /listings/<slug>?type=for_sale|for_rent&page=N` serves page N of that location's
listings, with an `a.next` link on all but the last page. Unknown paths, types and
pages answer 404; set `fail_status` to make every request answer that status instead.
"""

import asyncio
import re
from urllib.parse import parse_qs, urlsplit

from shared.clock import Clock, SystemClock
from shared.demo.html import index_html, listings_html
from shared.demo.listings import LISTING_TYPES, listings_page, page_count
from shared.http_server import answer_get

DEMO_LOCATIONS = ("austin-tx", "denver-co")
LISTINGS_PATH = re.compile(r"^/listings/([a-z0-9][a-z0-9-]{0,62})$")

Response = tuple[int, str]


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
        await answer_get(reader, writer, self._answer)

    def _answer(self, target: str) -> tuple[int, str, bytes]:
        self.requested.append(target)
        status, html = self.route(target)
        return status, "text/html; charset=utf-8", html.encode()
