"""The `browser` scraper: render listing pages in Chromium, then read them like `http`.

Per start URL: load it, run the steps, wait for `wait_for_selector` and for the network to
settle, click "load more" while it adds items, read the rendered HTML with the same field
specs as `http` (`extraction.parse_page`), then follow the next-page link, up to
`max_pages`. Each load goes through polite fetching with the schedule's fetch params
(`page_tools.PageLoads`); a start URL robots.txt disallows is skipped, as `http` skips it.
A failure keeps a screenshot of the page with the run.
"""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from natscron_runner.scrapers.base import ScrapeContext, parse_params
from natscron_runner.scrapers.browser_params import BrowserParams, ClickStep, FillStep, Step
from natscron_runner.scrapers.browser_rules import context_options
from natscron_runner.scrapers.chromium import Chromium
from natscron_runner.scrapers.errors import TransientScrapeError
from natscron_runner.scrapers.extraction import keyed_items, parse_page
from natscron_runner.scrapers.page_tools import (
    VIEWPORT,
    PageLoads,
    as_scrape_error,
    first_line,
    keep_failure_screenshot,
    settle,
    wait_for,
)
from natscron_shared.contract.messages import ScrapedItem

COUNT_GREW = "([selector, before]) => document.querySelectorAll(selector).length > before"


class BrowserScraper:
    """Renders listing pages in Chromium (JavaScript, steps, "load more"), then reads them
    with the `http` scraper's field specs; see `BrowserParams`.

    Reports `pages_fetched` (and `screenshot_taken` on a failure) as the run's metadata."""

    name = "browser"
    params_model = BrowserParams

    def __init__(self, chromium: Chromium) -> None:
        self._chromium = chromium

    async def aclose(self) -> None:
        await self._chromium.close()

    async def scrape(
        self, params: dict[str, Any], context: ScrapeContext
    ) -> AsyncIterator[ScrapedItem]:
        parsed = parse_params(self.name, BrowserParams, params)
        rules = context.polite.rules(parsed, context.job_id)
        loads = PageLoads(context, rules, parsed.page_timeout_seconds * 1000)
        produced = 0
        context.metadata["pages_fetched"] = 0
        async with self._chromium.context(
            viewport=VIEWPORT, **context_options(rules)
        ) as browser_context:
            browser_context.set_default_timeout(parsed.page_timeout_seconds * 1000)
            page = await browser_context.new_page()
            try:
                for start_url in parsed.urls:
                    async for item in _listing(page, start_url, parsed, context, loads):
                        yield item
                        produced += 1
                        if parsed.limit is not None and produced >= parsed.limit:
                            return
            except Exception as exc:
                if parsed.screenshot_on_failure:
                    await keep_failure_screenshot(page, context)
                raise as_scrape_error(exc) from exc
        loads.check_any_allowed()


async def _listing(
    page: Page, start_url: str, params: BrowserParams, context: ScrapeContext, loads: PageLoads
) -> AsyncIterator[ScrapedItem]:
    """The items of one start URL and the pages after it, up to one robots.txt disallows."""
    timeout_ms = params.page_timeout_seconds * 1000
    url: str | None = start_url
    visited: set[str] = set()
    while url is not None and url not in visited and len(visited) < params.max_pages:
        visited.add(url)
        if not await loads.load(page, url):
            return
        context.metadata["pages_fetched"] += 1
        if len(visited) == 1:
            for index, step in enumerate(params.steps):
                await _run_step(page, index, step, timeout_ms)
        if params.wait_for_selector:
            await wait_for(page, params.wait_for_selector, timeout_ms)
        await settle(page, params.network_idle_seconds)
        await _load_more(page, params, timeout_ms)
        html = await page.content()
        found = await asyncio.to_thread(parse_page, html, page.url, params)
        for item in keyed_items(found.items, context.skip):
            yield item
        url = found.next_url


async def _run_step(page: Page, index: int, step: Step, timeout_ms: float) -> None:
    try:
        if isinstance(step, ClickStep):
            await page.locator(step.selector).first.click(timeout=timeout_ms)
        elif isinstance(step, FillStep):
            await page.locator(step.selector).first.fill(step.value, timeout=timeout_ms)
        elif step.selector is not None:
            await page.wait_for_selector(step.selector, state="attached", timeout=timeout_ms)
        elif step.seconds is not None:
            await asyncio.sleep(step.seconds)
    except PlaywrightError as exc:
        target = f" {step.selector!r}" if step.selector else ""
        raise TransientScrapeError(
            f"step {index} ({step.action}{target}) failed on {page.url}: {first_line(exc)}"
        ) from exc


async def _load_more(page: Page, params: BrowserParams, timeout_ms: float) -> None:
    """Click "load more" until it is gone or disabled, a click adds no item, `limit` items
    are on the page, or `max_load_more` clicks."""
    if params.load_more_selector is None:
        return
    button = page.locator(params.load_more_selector).first
    for _ in range(params.max_load_more):
        before = await page.locator(params.item_selector).count()
        if params.limit is not None and before >= params.limit:
            return
        if not (await button.is_visible() and await button.is_enabled()):
            return
        await button.click(timeout=timeout_ms)
        try:
            await page.wait_for_function(
                COUNT_GREW, arg=[params.item_selector, before], timeout=timeout_ms
            )
        except PlaywrightTimeoutError:
            return
        await settle(page, params.network_idle_seconds)
