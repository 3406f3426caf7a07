"""The `http` scraper: fetch listing pages, read one item per CSS match, follow "next"."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from natscron_runner.scrapers.base import ScrapeContext, parse_params
from natscron_runner.scrapers.errors import http_status_error
from natscron_runner.scrapers.extraction import keyed_items, parse_page
from natscron_runner.scrapers.http_params import HttpParams
from natscron_runner.scrapers.page_fetch import fetch_page, polite_client
from natscron_runner.scrapers.polite import SKIP_ROBOTS, RobotsDisallowedError, all_disallowed
from natscron_shared.contract.messages import ScrapedItem


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
                        answer = await fetch_page(client, context.polite, url, rules)
                    except RobotsDisallowedError as exc:
                        context.skip_page(exc.url, SKIP_ROBOTS)
                        disallowed.append(exc.url)
                        break
                    error = http_status_error(answer.url, answer.status)
                    if error is not None:
                        raise error
                    fetched += 1
                    context.metadata["pages_fetched"] += 1
                    page = await asyncio.to_thread(parse_page, answer.text, answer.url, parsed)
                    for item in keyed_items(page.items, context.skip):
                        yield item
                        produced += 1
                        if parsed.limit is not None and produced >= parsed.limit:
                            return
                    url = page.next_url
        if fetched == 0 and disallowed:
            raise all_disallowed(disallowed)
