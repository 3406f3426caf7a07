"""The `browser` scraper against a local site whose items only JavaScript renders."""

import asyncio
from typing import Any

import pytest

from natscron_runner.scrapers import InvalidParamsError, ScrapeContext, TransientScrapeError
from natscron_runner.scrapers.browser_scraper import BrowserScraper
from natscron_runner.scrapers.chromium import Chromium
from natscron_runner.scrapers.http_scraper import HttpScraper
from natscron_runner.scrapers.page_tools import VIEWPORT, bounded_jpeg
from natscron_runner.scrapers.polite import Politeness, local_politeness
from natscron_shared.contract.messages import ScrapedItem
from natscron_shared.nats.jetstream_layout import SCREENSHOT_MAX_BYTES
from tests.browser_site import (
    JS_PAGES,
    LOAD_MORE_STEP,
    LOAD_MORE_TOTAL,
    PAGE_ITEMS,
    BrowserTestSite,
    item_key,
)
from tests.waiting import eventually

pytestmark = pytest.mark.integration  # a real Chromium process

JPEG_START = b"\xff\xd8\xff"


def listing_of(url: str, **more: Any) -> dict[str, Any]:
    """The params `http` and `browser` share."""
    return {
        "urls": [url],
        "item_selector": "li.item",
        "fields": {"id": "@data-id", "title": ".title"},
        "key_field": "id",
        **more,
    }


def listing(url: str, **more: Any) -> dict[str, Any]:
    return listing_of(url, **{"network_idle_seconds": 2, "page_timeout_seconds": 10, **more})


class Scrape:
    """One job's context: what it skipped, the screenshots it kept; its polite fetching is
    `polite` (in-process, this scrape's own, by default)."""

    def __init__(self, polite: Politeness | None = None) -> None:
        self.skipped: list[str] = []
        self.skipped_pages: list[tuple[str, str]] = []
        self.screenshots: list[bytes] = []
        self.metadata: dict[str, Any] = {}
        self.polite = polite or local_politeness()

    def _skip_page(self, url: str, reason: str) -> None:
        self.skipped_pages.append((url, reason))

    async def _keep(self, jpeg: bytes) -> None:
        self.screenshots.append(jpeg)

    def context(self) -> ScrapeContext:
        return ScrapeContext(
            job_id="job-1",
            scheduled_job_id=None,
            attempt=1,
            skip=self.skipped.append,
            skip_page=self._skip_page,
            keep_screenshot=self._keep,
            metadata=self.metadata,
            polite=self.polite,
        )

    async def run(self, scraper: Any, params: dict[str, Any]) -> list[ScrapedItem]:
        return [item async for item in scraper.scrape(params, self.context())]


async def test_browser_reads_the_js_rendered_items_http_cannot_see(
    chromium: Chromium, browser_site: BrowserTestSite
) -> None:
    shared = listing_of(f"{browser_site.url}/js/1", next_page_selector="a.next")

    seen_by_http = await Scrape().run(HttpScraper(), shared)
    browser = Scrape()
    rendered = await browser.run(BrowserScraper(chromium), shared)

    assert seen_by_http == []
    expected = [item_key(page, i) for page in range(1, JS_PAGES + 1) for i in range(PAGE_ITEMS)]
    assert [item.key for item in rendered] == expected
    assert rendered[0].data == {"id": "p1-0", "title": "Item 0 of page 1"}
    assert browser_site.paths().count("/api/items") == JS_PAGES
    assert browser.metadata == {"pages_fetched": JS_PAGES}


async def test_load_more_is_clicked_until_the_button_goes_or_a_limit(
    chromium: Chromium, browser_site: BrowserTestSite
) -> None:
    scraper = BrowserScraper(chromium)
    params = listing(f"{browser_site.url}/load-more", load_more_selector="#more")

    everything = await Scrape().run(scraper, params)
    assert [item.key for item in everything] == [f"more-{n}" for n in range(LOAD_MORE_TOTAL)]
    assert browser_site.paths().count("/api/more") == LOAD_MORE_TOTAL // LOAD_MORE_STEP

    browser_site.requests.clear()
    one_click = await Scrape().run(scraper, {**params, "max_load_more": 1})
    assert len(one_click) == 2 * LOAD_MORE_STEP

    browser_site.requests.clear()
    limited = await Scrape().run(scraper, {**params, "limit": LOAD_MORE_STEP + 1})
    assert len(limited) == LOAD_MORE_STEP + 1
    assert browser_site.paths().count("/api/more") == 2  # the first load, then one click


async def test_steps_fill_click_and_wait_before_reading(
    chromium: Chromium, browser_site: BrowserTestSite
) -> None:
    steps = [
        {"action": "fill", "selector": "#q", "value": "cats"},
        {"action": "click", "selector": "#go"},
        {"action": "wait", "selector": "li.item"},
    ]
    items = await Scrape().run(
        BrowserScraper(chromium), listing(f"{browser_site.url}/search", steps=steps)
    )
    assert [item.key for item in items] == ["found-cats"]


async def test_a_failed_page_keeps_a_bounded_screenshot(
    chromium: Chromium, browser_site: BrowserTestSite
) -> None:
    scraper = BrowserScraper(chromium)
    scrape = Scrape()
    with pytest.raises(TransientScrapeError, match="answered HTTP 500"):
        await scrape.run(scraper, listing(f"{browser_site.url}/broken"))
    [jpeg] = scrape.screenshots
    assert scrape.metadata == {"pages_fetched": 0, "screenshot_taken": True}  # as http counts
    assert jpeg.startswith(JPEG_START)
    assert 1000 < len(jpeg) <= SCREENSHOT_MAX_BYTES

    waited = Scrape()
    params = listing(f"{browser_site.url}/js/1", wait_for_selector=".never", page_timeout_seconds=1)
    with pytest.raises(TransientScrapeError, match=r"'.never' did not appear .* within 1s"):
        await waited.run(scraper, params)
    assert len(waited.screenshots) == 1

    unpictured = Scrape()
    with pytest.raises(TransientScrapeError):
        await unpictured.run(
            scraper, listing(f"{browser_site.url}/broken", screenshot_on_failure=False)
        )
    assert unpictured.screenshots == []


async def test_a_screenshot_too_large_even_at_low_quality_is_not_taken(
    chromium: Chromium, browser_site: BrowserTestSite
) -> None:
    async with chromium.context(viewport=VIEWPORT) as context:
        page = await context.new_page()
        await page.goto(f"{browser_site.url}/broken")
        fitting = await bounded_jpeg(page)
        assert fitting is not None and len(fitting) <= SCREENSHOT_MAX_BYTES
        assert await bounded_jpeg(page, max_bytes=100) is None


async def test_a_cancelled_scrape_closes_its_context(
    chromium: Chromium, browser_site: BrowserTestSite
) -> None:
    params = listing(f"{browser_site.url}/js/1", wait_for_selector=".never")
    scraping = asyncio.create_task(Scrape().run(BrowserScraper(chromium), params))

    async def open_contexts() -> int:
        return chromium.job_contexts()

    await eventually(open_contexts, lambda n: n == 1, what="the job's context is open")
    scraping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await scraping
    assert chromium.job_contexts() == 0


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"steps": [{"action": "click", "selector": "a[[["}]}, "invalid CSS selector"),
        ({"steps": [{"action": "wait"}]}, "one of selector or seconds"),
        ({"steps": [{"action": "scroll", "selector": "a"}]}, "steps.0"),
        ({"wait_for_selector": "li[["}, "invalid CSS selector"),
        ({"page_timeout_seconds": 0}, "page_timeout_seconds"),
        ({"urls": ["file:///etc/passwd"]}, "not an http"),
    ],
    ids=["bad-step-css", "empty-wait", "unknown-action", "bad-wait-css", "zero-timeout", "file"],
)
async def test_invalid_params_are_refused_before_a_browser_starts(
    change: dict[str, Any], complaint: str
) -> None:
    never_launched = Chromium("/nonexistent/chromium")
    with pytest.raises(InvalidParamsError, match=complaint):
        await Scrape().run(BrowserScraper(never_launched), {**listing("http://x/"), **change})
