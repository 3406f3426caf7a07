"""What both browser scrapers do with a page: load it politely, let it settle, turn
Playwright's errors into scrape errors, and keep a bounded screenshot of a failure."""

import contextlib
import logging

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from natscron_runner.scrapers.base import ScrapeContext
from natscron_runner.scrapers.errors import (
    ScrapeError,
    TransientScrapeError,
    http_status_error,
)
from natscron_shared.nats.jetstream_layout import SCREENSHOT_MAX_BYTES

log = logging.getLogger(__name__)

VIEWPORT = {"width": 1280, "height": 800}
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


async def load(page: Page, url: str, context: ScrapeContext, timeout_ms: float) -> None:
    """Navigate to `url` (through `context.polite`) until its `load` event; an HTTP error
    answer fails like it does for `http`."""
    try:
        async with context.polite.fetching(url) as permit:
            response = await page.goto(url, wait_until="load", timeout=timeout_ms)
            if response is not None:
                permit.report(response.status, response.headers.get("retry-after"))
    except PlaywrightTimeoutError as exc:
        raise TransientScrapeError(f"timed out loading {url} ({timeout_ms / 1000:g}s)") from exc
    except PlaywrightError as exc:
        raise TransientScrapeError(f"could not load {url}: {first_line(exc)}") from exc
    if response is not None:
        error = http_status_error(url, response.status)
        if error is not None:
            raise error


async def settle(page: Page, network_idle_seconds: float) -> None:
    """Give the page up to `network_idle_seconds` to stop fetching; one that never does is
    read as it is then."""
    if network_idle_seconds <= 0:
        return
    with contextlib.suppress(PlaywrightTimeoutError):
        await page.wait_for_load_state("networkidle", timeout=network_idle_seconds * 1000)


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
    jpeg = await bounded_jpeg(page)
    if jpeg is not None:
        await context.keep_screenshot(jpeg)
        context.metadata["screenshot_taken"] = True
