"""What both browser scrapers do with a page: load it politely, let it settle, turn
Playwright's errors into scrape errors, and keep a bounded screenshot of a failure."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page, Request, Response
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from natscron_runner.scrapers.base import ScrapeContext
from natscron_runner.scrapers.errors import (
    ScrapeError,
    TransientScrapeError,
    http_status_error,
)
from natscron_runner.scrapers.polite import (
    SKIP_ROBOTS,
    Answer,
    FetchRules,
    RobotsDisallowedError,
    all_disallowed,
)
from natscron_runner.scrapers.polite.hosts import origin_of
from natscron_shared.nats.jetstream_layout import SCREENSHOT_MAX_BYTES

log = logging.getLogger(__name__)

VIEWPORT = {"width": 1280, "height": 800}
SAME_DOCUMENT: Answer = (200, None)
"""What `page.goto` without a response (a same-document navigation) reports: the host was
not asked anything."""
BLANK = "about:blank"
JPEG_QUALITIES = (70, 45, 25, 10)
"""Tried in turn until the JPEG fits in `SCREENSHOT_MAX_BYTES`."""
SCREENSHOT_TIMEOUT_MS = 5_000


def first_line(error: PlaywrightError) -> str:
    """Playwright's message without the call log it appends."""
    return (error.message or type(error).__name__).strip().splitlines()[0]


def as_scrape_error(error: Exception) -> Exception:
    """A Playwright error as the transient scrape error it is; anything else unchanged."""
    if isinstance(error, ScrapeError) or not isinstance(error, PlaywrightError):
        return error
    return TransientScrapeError(f"browser: {first_line(error)}")


class PageLoads:
    """One scrape's page loads (navigations), each through polite fetching with the
    scrape's rules, as `http` fetches: robots.txt, the host's request slots and pace, and a
    429/503's backoff (the load is sent again after it); the schedule's cookies go with
    each. The requests a page makes itself (scripts, images, XHR) are not gated.

    A page robots.txt disallows is not loaded: `load` returns False and counts it skipped
    (`robots_txt`); `check_any_allowed` fails a run that was allowed none of its pages."""

    def __init__(self, context: ScrapeContext, rules: FetchRules, timeout_ms: float) -> None:
        self._context = context
        self._rules = rules
        self._timeout_ms = timeout_ms
        self.loaded = 0
        self.disallowed: list[str] = []

    async def load(self, page: Page, url: str) -> bool:
        """Navigate to `url` until its `load` event; an HTTP error answer fails like it does
        for `http`."""

        async def goto() -> Response | None:
            if self._rules.cookies:
                site = origin_of(url) + "/"
                await page.context.add_cookies(
                    [
                        {"name": name, "value": value, "url": site}
                        for name, value in self._rules.cookies.items()
                    ]
                )
            return await page.goto(url, wait_until="load", timeout=self._timeout_ms)

        try:
            response = await self._context.polite.call(url, self._rules, goto, _answer)
        except RobotsDisallowedError as exc:
            self._context.skip_page(exc.url, SKIP_ROBOTS)
            self.disallowed.append(exc.url)
            return False
        except PlaywrightTimeoutError as exc:
            raise TransientScrapeError(
                f"timed out loading {url} ({self._timeout_ms / 1000:g}s)"
            ) from exc
        except PlaywrightError as exc:
            raise TransientScrapeError(f"could not load {url}: {first_line(exc)}") from exc
        self.loaded += 1
        if response is not None:
            error = http_status_error(url, response.status)
            if error is not None:
                raise error
        return True

    def check_any_allowed(self) -> None:
        if self.loaded == 0 and self.disallowed:
            raise all_disallowed(self.disallowed)


def _answer(response: Response | None) -> Answer:
    if response is None:
        return SAME_DOCUMENT
    return response.status, response.headers.get("retry-after")


async def settle(page: Page, network_idle_seconds: float) -> None:
    """Give the page up to `network_idle_seconds` to stop fetching; one that never does is
    read as it is then."""
    if network_idle_seconds <= 0:
        return
    with contextlib.suppress(PlaywrightTimeoutError):
        await page.wait_for_load_state("networkidle", timeout=network_idle_seconds * 1000)


QUIET_SECONDS = 0.5
"""As Playwright's `networkidle`: no request in flight for this long."""
QUIET_CHECK_SECONDS = 0.05


@contextlib.asynccontextmanager
async def settling_after(page: Page, network_idle_seconds: float) -> AsyncIterator[None]:
    """Around an action that loads no page (a click): on the way out, give the requests
    it started up to `network_idle_seconds` to end. `networkidle` cannot tell: it is a state
    of the last page load, reached once and then always true. Requests are watched from
    before the action, so none it starts is missed."""
    in_flight: set[Request] = set()

    def started(request: Request) -> None:
        in_flight.add(request)

    def ended(request: Request) -> None:
        in_flight.discard(request)

    page.on("request", started)
    page.on("requestfinished", ended)
    page.on("requestfailed", ended)
    try:
        yield
        await _until_quiet(lambda: bool(in_flight), network_idle_seconds)
    finally:
        page.remove_listener("request", started)
        page.remove_listener("requestfinished", ended)
        page.remove_listener("requestfailed", ended)


async def _until_quiet(busy: Callable[[], bool], within: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    quiet_since = loop.time()
    while loop.time() < deadline:
        if busy():
            quiet_since = loop.time()
        elif loop.time() - quiet_since >= QUIET_SECONDS:
            return
        await asyncio.sleep(QUIET_CHECK_SECONDS)


async def wait_for(page: Page, selector: str, timeout_ms: float) -> None:
    try:
        await page.wait_for_selector(selector, state="attached", timeout=timeout_ms)
    except PlaywrightTimeoutError as exc:
        raise TransientScrapeError(
            f"{selector!r} did not appear on {page.url} within {timeout_ms / 1000:g}s"
        ) from exc


async def bounded_jpeg(page: Page, max_bytes: int = SCREENSHOT_MAX_BYTES) -> bytes | None:
    """The viewport as a JPEG of at most `max_bytes`, lowering the quality until it fits;
    None if it never does or the page cannot be pictured (it crashed, say)."""
    for quality in JPEG_QUALITIES:
        try:
            jpeg = await page.screenshot(
                type="jpeg", quality=quality, timeout=SCREENSHOT_TIMEOUT_MS
            )
        except PlaywrightError as exc:
            log.info("no screenshot of %s: %s", page.url, first_line(exc))
            return None
        if len(jpeg) <= max_bytes:
            return jpeg
    log.info("no screenshot of %s: over %d bytes even at the lowest quality", page.url, max_bytes)
    return None


async def keep_failure_screenshot(page: Page, context: ScrapeContext) -> None:
    if page.url == BLANK:
        return  # it never left the blank page: nothing to show
    jpeg = await bounded_jpeg(page)
    if jpeg is not None:
        await context.keep_screenshot(jpeg)
        context.metadata["screenshot_taken"] = True
