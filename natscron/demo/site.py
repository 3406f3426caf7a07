"""A tiny listings website for demos and tests (asyncio streams, no web framework).

`GET /listings/<slug>?type=for_sale|for_rent&page=N` serves page N of that location's
listings, with an `a.next` link on all but the last page. Unknown paths, types and
pages answer 404; set `fail_status` to make every request answer that status instead.
"""

import re
from urllib.parse import parse_qs, urlsplit

from natscron.demo.html import index_html, listings_html
from natscron.demo.listings import LISTING_TYPES, listings_page, page_count
from natscron_shared.runtime.clock import Clock, SystemClock
from natscron_shared.runtime.health_server import GetServer

DEMO_LOCATIONS = ("austin-tx", "denver-co")
LISTINGS_PATH = re.compile(r"^/listings/([a-z0-9][a-z0-9-]{0,62})$")

Response = tuple[int, str]


class DemoListingsSite(GetServer):
    def __init__(self, host: str = "127.0.0.1", port: int = 0, clock: Clock | None = None) -> None:
        super().__init__(host, port)
        self._clock: Clock = clock or SystemClock()
        self.fail_status: int | None = None
        self.requested: list[str] = []

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

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

    def respond(self, target: str) -> tuple[int, str, bytes]:
        self.requested.append(target)
        status, html = self.route(target)
        return status, "text/html; charset=utf-8", html.encode()
