"""The `cookie_scan` scraper (seed 003's job): which cookies a site sets, before and after
its consent control is clicked, and what set each one.

Phase `before_consent`: visit the start page, `custom_pages`, and links within the site up
to `scan_depth` hops, at most `max_pages` pages, in a fresh browser context; read its
cookie jar. Phase `after_consent` (with an `accept_selector`): on the start page click the
control, visit the same pages again, and read the jar again. One item per cookie per phase,
keyed `<site>|<name>|<cookie domain>|<path>|<phase>`, so a run compared with the last one
shows what appeared, went, or changed (expiry, flags, setters).

Each page load goes through polite fetching with the schedule's fetch params
(`page_tools.PageLoads`): a page robots.txt disallows is not visited (a skipped page,
`robots_txt`), and a scan allowed none of its pages fails saying so. The consent control is
clicked on the first page scanned: the start page, unless robots.txt disallows it. The
schedule's own `cookies` are in the jar like any other, with no setter.
"""

import logging
from collections import deque
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urldefrag, urljoin

from playwright.async_api import BrowserContext, Cookie, Page
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from natscron_runner.scrapers.base import ScrapeContext, parse_params
from natscron_runner.scrapers.browser_rules import context_options
from natscron_runner.scrapers.chromium import Chromium
from natscron_runner.scrapers.cookie_params import CookieScanParams
from natscron_runner.scrapers.cookie_setters import CookieSetters
from natscron_runner.scrapers.errors import ScrapeError, TransientScrapeError
from natscron_runner.scrapers.listing_params import is_http_url
from natscron_runner.scrapers.page_tools import (
    VIEWPORT,
    PageLoads,
    as_scrape_error,
    keep_failure_screenshot,
    settle,
    settling_after,
)
from natscron_runner.scrapers.sites import registrable_domain, same_site, site_of
from natscron_shared.contract.messages import ScrapedItem

log = logging.getLogger(__name__)

BEFORE_CONSENT = "before_consent"
AFTER_CONSENT = "after_consent"
SKIP_PAGE_FAILED = "page_failed"
LINKS = "links => links.map(link => link.href)"


class CookieScanScraper:
    """Scans a site's cookies in Chromium, before and after consent, with what set each.

    Reports `pages_scanned`, `cookies` (a count per phase) and `consent` (`clicked`) as the
    run's metadata."""

    name = "cookie_scan"
    params_model = CookieScanParams

    def __init__(self, chromium: Chromium) -> None:
        self._chromium = chromium

    async def aclose(self) -> None:
        await self._chromium.close()

    async def scrape(
        self, params: dict[str, Any], context: ScrapeContext
    ) -> AsyncIterator[ScrapedItem]:
        parsed = parse_params(self.name, CookieScanParams, params)
        rules = context.polite.rules(parsed, context.job_id)
        loads = PageLoads(context, rules, parsed.page_timeout_seconds * 1000)
        async with self._chromium.context(
            viewport=VIEWPORT, **context_options(rules)
        ) as browser_context:
            browser_context.set_default_timeout(parsed.page_timeout_seconds * 1000)
            setters = CookieSetters()
            await setters.install(browser_context)
            page = await browser_context.new_page()
            scan = _Scan(page, parsed, context, loads)
            try:
                pages = await scan.crawl()
                context.metadata["pages_scanned"] = len(pages)
                loads.check_any_allowed()
                cookies = context.metadata.setdefault("cookies", {})
                before = await _jar(browser_context, setters, parsed.url, BEFORE_CONSENT)
                cookies[BEFORE_CONSENT] = len(before)
                for item in before:
                    yield item
                if parsed.accept_selector is not None and pages:
                    await scan.consent(pages[0], parsed.accept_selector)
                    context.metadata["consent"] = "clicked"
                    await scan.revisit(pages[1:])
                    after = await _jar(browser_context, setters, parsed.url, AFTER_CONSENT)
                    cookies[AFTER_CONSENT] = len(after)
                    for item in after:
                        yield item
            except Exception as exc:
                if parsed.screenshot_on_failure:
                    await keep_failure_screenshot(page, context)
                raise as_scrape_error(exc) from exc
            finally:
                await setters.close()


class _Scan:
    """The pages of one scan, visited in one page (tab) of the job's context."""

    def __init__(
        self, page: Page, params: CookieScanParams, context: ScrapeContext, loads: PageLoads
    ) -> None:
        self._page = page
        self._params = params
        self._context = context
        self._loads = loads
        self._site = site_of(params.url)

    async def _visit(self, url: str) -> bool:
        """Visit a page; False if robots.txt disallows it (counted as a skipped page)."""
        if not await self._loads.load(self._page, url):
            return False
        await settle(self._page, self._params.network_idle_seconds)
        # A round trip to the page: its cookie writes reported before now have arrived.
        await self._page.evaluate("0")
        return True

    async def _visit_or_skip(self, url: str) -> bool:
        """Visit a page other than the start page; one that fails is skipped, not fatal."""
        try:
            return await self._visit(url)
        except (ScrapeError, PlaywrightError) as exc:
            log.info("cookie scan: skipping %s: %s", url, exc)
            self._context.skip_page(url, SKIP_PAGE_FAILED)
            return False

    async def crawl(self) -> list[str]:
        """Breadth first from the start page (depth 0, like `custom_pages`); the pages
        visited, the start page first (if robots.txt allows it)."""
        start = _page_url(self._params.url)
        visited = []
        seen = {start}
        queue: deque[tuple[str, int]] = deque()
        if await self._visit(start):
            visited.append(start)
            self._enqueue(queue, seen, await self._links(), 1)
        for custom in self._params.custom_pages:
            url = _page_url(urljoin(start, custom))
            if url not in seen:
                seen.add(url)
                queue.appendleft((url, 0))
        while queue and len(visited) < self._params.max_pages:
            url, depth = queue.popleft()
            if not await self._visit_or_skip(url):
                continue
            visited.append(url)
            self._enqueue(queue, seen, await self._links(), depth + 1)
        return visited

    def _enqueue(
        self, queue: deque[tuple[str, int]], seen: set[str], links: list[str], depth: int
    ) -> None:
        if depth > self._params.scan_depth:
            return
        for link in links:
            url = _page_url(link)
            if url not in seen and is_http_url(url) and same_site(url, self._site):
                seen.add(url)
                queue.append((url, depth))

    async def _links(self) -> list[str]:
        hrefs = await self._page.eval_on_selector_all("a[href]", LINKS)
        return [href for href in hrefs if isinstance(href, str)]

    async def consent(self, url: str, selector: str) -> None:
        """On the page `url`, click the consent control: in the page, or in a frame."""
        await self._visit(url)
        timeout_ms = self._params.consent_timeout_seconds * 1000
        control = self._page.locator(selector).first
        try:
            await control.wait_for(state="visible", timeout=timeout_ms)
        except PlaywrightTimeoutError:
            framed = [frame.locator(selector).first for frame in self._page.frames[1:]]
            visible = [locator for locator in framed if await locator.is_visible()]
            if not visible:
                raise TransientScrapeError(
                    f"consent control {selector!r} not found on {self._page.url} within"
                    f" {self._params.consent_timeout_seconds:g}s"
                ) from None
            control = visible[0]
        async with settling_after(self._page, self._params.network_idle_seconds):
            await control.click(timeout=timeout_ms)
        await self._page.evaluate("0")

    async def revisit(self, pages: list[str]) -> None:
        for url in pages:
            await self._visit_or_skip(url)


def _page_url(url: str) -> str:
    return urldefrag(url).url


async def _jar(
    browser_context: BrowserContext, setters: CookieSetters, start_url: str, phase: str
) -> list[ScrapedItem]:
    await setters.caught_up()
    site = site_of(start_url)
    cookies = await browser_context.cookies()
    items = [_item(cookie, setters, site, phase) for cookie in cookies]
    return sorted(items, key=lambda item: item.key)


def _item(cookie: Cookie, setters: CookieSetters, site: str, phase: str) -> ScrapedItem:
    name, domain, path = cookie["name"], cookie["domain"], cookie["path"]
    expires = cookie["expires"]
    session = expires is None or expires < 0
    data = {
        "name": name,
        "domain": domain,
        "path": path,
        "party": "first" if registrable_domain(domain) == site else "third",
        "site": site,
        "phase": phase,
        "session": session,
        "expires": None if session else datetime.fromtimestamp(expires, UTC).isoformat(),
        "secure": cookie["secure"],
        "http_only": cookie["httpOnly"],
        "same_site": cookie["sameSite"],
        "set_by": [setter.as_data() for setter in setters.of(name, domain)],
    }
    return ScrapedItem(key=f"{site}|{name}|{domain}|{path}|{phase}", data=data)
