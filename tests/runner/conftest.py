"""The browser scrapers' fixtures: the local test site, and one Chromium per module."""

import shutil
from collections.abc import AsyncIterator

import pytest

from natscron_runner.scrapers.browser_support import why_no_browser
from natscron_runner.scrapers.chromium import Chromium
from tests.browser_site import BrowserTestSite


def require_browser() -> None:
    reason = why_no_browser(None)
    if reason is not None:
        pytest.skip(f"the browser scrapers cannot run here: {reason}")


@pytest.fixture
async def browser_site() -> AsyncIterator[BrowserTestSite]:
    site = BrowserTestSite()
    await site.start()
    yield site
    await site.stop()


@pytest.fixture(scope="module")
async def chromium() -> AsyncIterator[Chromium]:
    require_browser()
    browser = Chromium(shutil.which("chromium") or "chromium")
    yield browser
    await browser.close()
