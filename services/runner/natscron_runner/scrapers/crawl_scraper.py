"""The `crawl` scraper: from seed pages, follow links breadth first within a scope, up to
a depth and a number of pages, reading items off each page.

**Resuming.** Before each fetch the frontier is checkpointed with that page as in flight
(`context.checkpoint.save`, which first makes sure every item yielded so far is stored).
A later delivery or attempt of the job (its runner died, or the attempt failed and is
retried) loads it and carries on from there: pages fetched before are never fetched
again. The page in flight at a crash may or may not have reached the site, so it is not
fetched again either: it is counted as skipped (`interrupted`), with its items and links
(at most one page). A fetch that fails transiently (5xx, 408, 429 after the backoffs, the
network) puts its page back at the front before the attempt fails, so the retry asks for
it first.

**Skipped pages** (`context.skip_page`, counted by reason in the run's final event):
`robots_txt`, `http_<status>` (a 4xx other than 408/429, or a 3xx without a location),
`not_html`, `redirect` (too many, or to a non-http URL), `interrupted`.
"""

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx

from natscron_runner.scrapers.base import ScrapeContext, parse_params
from natscron_runner.scrapers.crawl_page import parse_crawl_page
from natscron_runner.scrapers.crawl_params import CrawlParams
from natscron_runner.scrapers.crawl_scope import Scope
from natscron_runner.scrapers.errors import (
    RETRYABLE_CLIENT_STATUSES,
    CheckpointTooLargeError,
    PermanentScrapeError,
    TransientScrapeError,
)
from natscron_runner.scrapers.extraction import keyed_items
from natscron_runner.scrapers.frontier import Frontier
from natscron_runner.scrapers.page_fetch import Fetched, fetch_page, polite_client
from natscron_runner.scrapers.polite import (
    SKIP_ROBOTS,
    FetchRules,
    RobotsDisallowedError,
    all_disallowed,
)
from natscron_runner.scrapers.urls import normalise_url
from natscron_shared.contract.messages import ScrapedItem

log = logging.getLogger(__name__)

SKIP_INTERRUPTED = "interrupted"
SKIP_NOT_HTML = "not_html"
SKIP_REDIRECT = "redirect"


class CrawlScraper:
    """Follows links from seed pages within a scope; one item per page or per CSS match;
    resumes from its checkpoint; see `CrawlParams`."""

    name = "crawl"
    params_model = CrawlParams

    async def scrape(
        self, params: dict[str, Any], context: ScrapeContext
    ) -> AsyncIterator[ScrapedItem]:
        parsed = parse_params(self.name, CrawlParams, params)
        rules = context.polite.rules(parsed, context.job_id)
        seeds = [url for url in map(normalise_url, parsed.urls) if url is not None]
        scope = Scope.of(parsed, seeds)
        frontier = await _frontier(context, seeds, parsed.max_pages)
        async with polite_client(rules, parsed.request_timeout_seconds) as client:
            crawl = _Crawl(parsed, context, rules, client, scope, frontier)
            async for item in crawl.run():
                yield item
        if frontier.fetched == 0 and frontier.disallowed:
            raise all_disallowed(frontier.disallowed)


async def _frontier(context: ScrapeContext, seeds: list[str], max_pages: int) -> Frontier:
    state = await context.checkpoint.load()
    if state is None:
        return Frontier.start(seeds, max_queue=max_pages)
    try:
        frontier = Frontier.from_state(state)
    except ValueError as exc:
        raise PermanentScrapeError(f"cannot resume the crawl: {exc}") from exc
    log.info(
        "job %s resumes its crawl: %d pages fetched, %d queued",
        context.job_id,
        frontier.fetched,
        len(frontier.queue),
    )
    if frontier.in_flight is not None:
        context.skip_page(frontier.in_flight[0], SKIP_INTERRUPTED)
        frontier.in_flight = None
    return frontier


class _Crawl:
    def __init__(
        self,
        params: CrawlParams,
        context: ScrapeContext,
        rules: FetchRules,
        client: httpx.AsyncClient,
        scope: Scope,
        frontier: Frontier,
    ) -> None:
        self._params = params
        self._context = context
        self._rules = rules
        self._client = client
        self._scope = scope
        self._frontier = frontier

    def _done(self) -> bool:
        frontier, params = self._frontier, self._params
        limit_reached = params.limit is not None and frontier.produced >= params.limit
        return not frontier.queue or frontier.fetched >= params.max_pages or limit_reached

    async def run(self) -> AsyncIterator[ScrapedItem]:
        frontier, context = self._frontier, self._context
        while not self._done():
            url, depth = frontier.next()
            if not await self._allowed(url, depth):
                continue
            frontier.in_flight = (url, depth)
            await self._save()
            fetched = await self._fetch(url, depth)
            if fetched is None:
                continue
            page = await asyncio.to_thread(
                parse_crawl_page, fetched.text, fetched.url, depth, self._params
            )
            if depth < self._params.max_depth:
                for link in page.links:
                    if self._scope.follows(link):
                        frontier.offer(link, depth + 1)
            frontier.in_flight = None
            for item in keyed_items(page.items, context.skip):
                yield item
                frontier.produced += 1
                if self._params.limit is not None and frontier.produced >= self._params.limit:
                    return

    async def _allowed(self, url: str, depth: int) -> bool:
        try:
            allowed = await self._context.polite.allowed(url, self._rules)
        except TransientScrapeError:
            await self._give_up_for_now(url, depth)
            raise
        if not allowed:
            self._disallowed(url)
        return allowed

    def _disallowed(self, url: str) -> None:
        self._context.skip_page(url, SKIP_ROBOTS)
        self._frontier.note_disallowed(url)
        self._frontier.in_flight = None

    async def _fetch(self, url: str, depth: int) -> Fetched | None:
        """The page, or None when it is skipped (and counted)."""
        frontier, context = self._frontier, self._context
        try:
            fetched = await fetch_page(self._client, context.polite, url, self._rules)
        except RobotsDisallowedError as exc:  # a redirect led there
            self._disallowed(exc.url)
            return None
        except TransientScrapeError:
            await self._give_up_for_now(url, depth)
            raise
        except PermanentScrapeError as exc:
            log.info("job %s skips %s: %s", context.job_id, url, exc)
            self._skipped(url, SKIP_REDIRECT)
            return None
        status = fetched.status
        if status >= 500 or status in RETRYABLE_CLIENT_STATUSES:
            await self._give_up_for_now(url, depth)
            raise TransientScrapeError(f"{fetched.url} answered HTTP {status}")
        frontier.fetched += 1
        normalised = normalise_url(fetched.url)
        if normalised is not None:
            frontier.mark_seen(normalised)
        reason = f"http_{status}" if status >= 300 else None if fetched.is_html else SKIP_NOT_HTML
        if reason is not None:
            self._skipped(url, reason)
            return None
        return fetched

    def _skipped(self, url: str, reason: str) -> None:
        self._context.skip_page(url, reason)
        self._frontier.in_flight = None

    async def _give_up_for_now(self, url: str, depth: int) -> None:
        """The attempt fails here: its page goes back first in line for the retry."""
        self._frontier.put_back(url, depth)
        await self._save()

    async def _save(self) -> None:
        while True:
            try:
                await self._context.checkpoint.save(self._frontier.to_state())
            except CheckpointTooLargeError:
                dropped = self._frontier.trim()
                if dropped == 0:
                    raise
                log.warning(
                    "job %s: crawl state too big to checkpoint; dropped %d queued pages",
                    self._context.job_id,
                    dropped,
                )
            else:
                return
