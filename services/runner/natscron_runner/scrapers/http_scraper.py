"""The `http` scraper: fetch listing pages, read one item per CSS match, follow "next"."""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

from bs4 import BeautifulSoup

from natscron_runner.scrapers.base import ScrapeContext, parse_params
from natscron_runner.scrapers.errors import PermanentScrapeError
from natscron_runner.scrapers.extraction import read_items
from natscron_runner.scrapers.http_params import HttpParams, is_http_url
from natscron_runner.scrapers.page_fetch import fetch_page, polite_client, raise_for_status
from natscron_runner.scrapers.polite import RobotsDisallowedError
from natscron_shared.contract.messages import ScrapedItem

SKIP_MISSING_KEY = "missing_key"
SKIP_ROBOTS = "robots_txt"


@dataclass(frozen=True)
class Page:
    """What one page held: items (None where the key was missing) and the next page."""

    items: list[ScrapedItem | None]
    next_url: str | None


def parse_page(html: str, url: str, params: HttpParams) -> Page:
    """Pure parsing (runs in a worker thread, so big pages do not block the loop)."""
    soup = BeautifulSoup(html, "html.parser")
    items = read_items(soup, params.item_selector, params.field_specs(), params.key_field)
    next_url = None
    if params.next_page_selector:
        link = soup.select_one(params.next_page_selector)
        href = link.get("href") if link is not None else None
        if isinstance(href, str) and href.strip():
            candidate = urljoin(url, href.strip())
            next_url = candidate if is_http_url(candidate) else None
    return Page(items=items, next_url=next_url)


def all_disallowed(disallowed: list[str]) -> PermanentScrapeError:
    """The run fetched nothing: robots.txt disallowed every URL it had."""
    shown = ", ".join(disallowed[:3]) + (", ..." if len(disallowed) > 3 else "")
    return PermanentScrapeError(
        f"robots.txt disallows every URL of this run ({len(disallowed)}: {shown});"
        " params obey_robots: false would fetch them anyway"
    )


class HttpScraper:
    """Scrapes listing pages with CSS selectors; see `HttpParams`.

    Reports `pages_fetched` as the run's metadata."""

    name = "http"
    params_model = HttpParams

    async def scrape(
        self, params: dict[str, Any], context: ScrapeContext
    ) -> AsyncIterator[ScrapedItem]:
        parsed = parse_params(self.name, HttpParams, params)
        rules = context.polite.rules(parsed, context.job_id)
        produced = 0
        fetched = 0
        disallowed: list[str] = []
        context.metadata["pages_fetched"] = 0
        async with polite_client(rules, parsed.request_timeout_seconds) as client:
            for start_url in parsed.urls:
                url: str | None = start_url
                visited: set[str] = set()
                while url is not None and url not in visited and len(visited) < parsed.max_pages:
                    visited.add(url)
                    try:
                        page_fetched = await fetch_page(client, context.polite, url, rules)
                    except RobotsDisallowedError as exc:
                        context.skip_page(exc.url, SKIP_ROBOTS)
                        disallowed.append(exc.url)
                        break
                    raise_for_status(page_fetched)
                    fetched += 1
                    context.metadata["pages_fetched"] += 1
                    page = await asyncio.to_thread(
                        parse_page, page_fetched.text, page_fetched.url, parsed
                    )
                    for item in page.items:
                        if item is None:
                            context.skip(SKIP_MISSING_KEY)
                            continue
                        yield item
                        produced += 1
                        if parsed.limit is not None and produced >= parsed.limit:
                            return
                    url = page.next_url
        if fetched == 0 and disallowed:
            raise all_disallowed(disallowed)
