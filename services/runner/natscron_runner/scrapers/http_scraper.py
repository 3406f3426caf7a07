"""The `http` scraper: fetch listing pages, read one item per CSS match, follow "next"."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx

from natscron_runner.scrapers.base import ScrapeContext, parse_params
from natscron_runner.scrapers.errors import TransientScrapeError, http_status_error
from natscron_runner.scrapers.extraction import keyed_items, parse_page
from natscron_runner.scrapers.http_params import HttpParams
from natscron_shared.contract.messages import ScrapedItem

USER_AGENT = "natscron-http-scraper/0.1"


async def fetch_html(client: httpx.AsyncClient, url: str) -> str:
    """GET `url`: 5xx, 408, 429 and network trouble are transient, other 4xx permanent."""
    try:
        response = await client.get(url)
    except httpx.TimeoutException as exc:
        raise TransientScrapeError(f"timed out fetching {url}") from exc
    except httpx.TransportError as exc:
        raise TransientScrapeError(f"could not fetch {url}: {type(exc).__name__}: {exc}") from exc
    error = http_status_error(url, response.status_code)
    if error is not None:
        raise error
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
                    for item in keyed_items(page, context.skip):
                        yield item
                        produced += 1
                        if parsed.limit is not None and produced >= parsed.limit:
                            return
                    url = page.next_url
