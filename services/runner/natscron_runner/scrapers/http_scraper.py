"""The `http` scraper: fetch listing pages, read one item per CSS match, follow "next"."""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import httpx
from bs4 import BeautifulSoup, Tag

from natscron_runner.scrapers.base import ScrapeContext, parse_params
from natscron_runner.scrapers.errors import PermanentScrapeError, TransientScrapeError
from natscron_runner.scrapers.http_params import FieldSpec, HttpParams, is_http_url
from natscron_shared.contract.messages import ScrapedItem

USER_AGENT = "natscron-http-scraper/0.1"
RETRYABLE_CLIENT_STATUSES = (408, 429)
SKIP_MISSING_KEY = "missing_key"


@dataclass(frozen=True)
class Page:
    """What one page held: items (None where the key was missing) and the next page."""

    items: list[ScrapedItem | None]
    next_url: str | None


def _read_field(element: Tag, spec: FieldSpec) -> str | None:
    target = element.select_one(spec.selector) if spec.selector else element
    if target is None:
        return None
    if spec.attr is None:
        return target.get_text(" ", strip=True)
    value = target.get(spec.attr)
    if value is None:
        return None
    return " ".join(value) if isinstance(value, list) else str(value)


def parse_page(html: str, url: str, params: HttpParams) -> Page:
    """Pure parsing (runs in a worker thread, so big pages do not block the loop)."""
    soup = BeautifulSoup(html, "html.parser")
    specs = params.field_specs()
    items: list[ScrapedItem | None] = []
    for element in soup.select(params.item_selector):
        data = {name: _read_field(element, spec) for name, spec in specs.items()}
        key = data[params.key_field]
        items.append(ScrapedItem(key=key, data=data) if key else None)
    next_url = None
    if params.next_page_selector:
        link = soup.select_one(params.next_page_selector)
        href = link.get("href") if link is not None else None
        if isinstance(href, str) and href.strip():
            candidate = urljoin(url, href.strip())
            next_url = candidate if is_http_url(candidate) else None
    return Page(items=items, next_url=next_url)


async def fetch_html(client: httpx.AsyncClient, url: str) -> str:
    """GET `url`: 5xx, 408, 429 and network trouble are transient, other 4xx permanent."""
    try:
        response = await client.get(url)
    except httpx.TimeoutException as exc:
        raise TransientScrapeError(f"timed out fetching {url}") from exc
    except httpx.TransportError as exc:
        raise TransientScrapeError(f"could not fetch {url}: {type(exc).__name__}: {exc}") from exc
    status = response.status_code
    if status >= 500 or status in RETRYABLE_CLIENT_STATUSES:
        raise TransientScrapeError(f"{url} answered HTTP {status}")
    if status >= 400:
        raise PermanentScrapeError(f"{url} answered HTTP {status}")
    return response.text


class HttpScraper:
    """Scrapes listing pages with CSS selectors; see `HttpParams`.

    Reports `pages_fetched` as the run's metadata."""

    name = "http"
    params_model = HttpParams

    async def scrape(
        self, params: dict[str, Any], context: ScrapeContext
    ) -> AsyncIterator[ScrapedItem]:
        parsed = parse_params(self.name, HttpParams, params)
        produced = 0
        context.metadata["pages_fetched"] = 0
        async with httpx.AsyncClient(
            timeout=parsed.request_timeout_seconds,
            follow_redirects=True,
            headers={"User-Agent": USER_AGENT},
        ) as client:
            for start_url in parsed.urls:
                url: str | None = start_url
                visited: set[str] = set()
                while url is not None and url not in visited and len(visited) < parsed.max_pages:
                    visited.add(url)
                    html = await fetch_html(client, url)
                    context.metadata["pages_fetched"] += 1
                    page = await asyncio.to_thread(parse_page, html, url, parsed)
                    for item in page.items:
                        if item is None:
                            context.skip(SKIP_MISSING_KEY)
                            continue
                        yield item
                        produced += 1
                        if parsed.limit is not None and produced >= parsed.limit:
                            return
                    url = page.next_url
