"""The `cookie_scan` scraper against a local site with a consent banner: the cookies before
and after "accept", first or third party, and what set each one."""

from typing import Any

import pytest

from natscron_runner.scrapers import (
    InvalidParamsError,
    PermanentScrapeError,
    ScrapeContext,
    TransientScrapeError,
)
from natscron_runner.scrapers.chromium import Chromium
from natscron_runner.scrapers.cookie_scan import CookieScanScraper
from natscron_runner.scrapers.sites import registrable_domain
from natscron_shared.contract.messages import ScrapedItem
from tests.browser_site import FIRST_PARTY_HOST, THIRD_PARTY_HOST, BrowserTestSite

pytestmark = pytest.mark.integration  # a real Chromium process

SITE = FIRST_PARTY_HOST


def scan_params(site: BrowserTestSite, **more: Any) -> dict[str, Any]:
    return {
        "url": f"{site.url}/consent",
        "custom_pages": ["/consent/custom"],
        "accept_selector": "#accept",
        # The default wait: the tracker a click loads sets its cookie after the click returns,
        # and on a loaded machine a shorter wait can read the jar before it has run.
        "network_idle_seconds": 5,
        "page_timeout_seconds": 10,
        **more,
    }


class Scan:
    def __init__(self) -> None:
        self.skipped: list[str] = []
        self.skipped_pages: list[tuple[str, str]] = []
        self.screenshots: list[bytes] = []
        self.items: list[ScrapedItem] = []
        self.metadata: dict[str, Any] = {}

    async def _keep(self, jpeg: bytes) -> None:
        self.screenshots.append(jpeg)

    async def run(self, chromium: Chromium, params: dict[str, Any]) -> list[ScrapedItem]:
        context = ScrapeContext(
            job_id="scan-1",
            scheduled_job_id=None,
            attempt=1,
            skip=self.skipped.append,
            skip_page=lambda url, reason: self.skipped_pages.append((url, reason)),
            keep_screenshot=self._keep,
            metadata=self.metadata,
        )
        async for item in CookieScanScraper(chromium).scrape(params, context):
            self.items.append(item)
        return self.items


def by_phase(items: list[ScrapedItem], phase: str) -> dict[str, dict[str, Any]]:
    return {item.data["name"]: item.data for item in items if item.data["phase"] == phase}


def setters(cookie: dict[str, Any]) -> list[tuple[str, str]]:
    return [(setter["type"], setter["url"]) for setter in cookie["set_by"]]


async def test_cookies_before_and_after_consent_first_and_third_party(
    chromium: Chromium, browser_site: BrowserTestSite
) -> None:
    scan = Scan()
    items = await scan.run(chromium, scan_params(browser_site))
    assert scan.metadata == {
        "pages_scanned": 3,
        "cookies": {"before_consent": 3, "after_consent": 6},
        "consent": "clicked",
    }
    site, tracker = browser_site.url, browser_site.third_party_url

    before = by_phase(items, "before_consent")
    after = by_phase(items, "after_consent")
    assert set(before) == {"session", "visited_about", "custom"}
    assert set(after) == {"session", "visited_about", "custom", "consent", "_ga", "tracker"}
    assert {name: cookie["party"] for name, cookie in after.items()} == {
        "session": "first",
        "visited_about": "first",
        "custom": "first",
        "consent": "first",
        "_ga": "first",  # a third party's script, writing the site's own cookie
        "tracker": "third",
    }
    assert {name: setters(cookie) for name, cookie in after.items()} == {
        "session": [("response", f"{site}/consent")],
        "visited_about": [("response", f"{site}/consent/about")],
        "custom": [("response", f"{site}/consent/custom")],
        "consent": [("script", f"{site}/consent")],  # an inline script: the document
        "_ga": [("script", f"{tracker}/tracker.js")],
        "tracker": [("response", f"{tracker}/tracker.js")],
    }

    session, tracked, visited = after["session"], after["tracker"], after["visited_about"]
    assert (session["http_only"], session["secure"], session["session"]) == (True, False, True)
    assert session["expires"] is None
    assert (tracked["domain"], tracked["secure"], tracked["same_site"]) == (
        THIRD_PARTY_HOST,
        True,
        "None",
    )
    assert tracked["expires"] is not None and not tracked["session"]
    assert visited["path"] == "/consent"
    keys = [item.key for item in items]
    assert len(keys) == len(set(keys))
    assert f"{SITE}|session|{SITE}|/|before_consent" in keys
    assert f"{SITE}|tracker|{THIRD_PARTY_HOST}|/|after_consent" in keys
    assert browser_site.paths(THIRD_PARTY_HOST) == ["/tracker.js"]  # only after "accept"
    assert "/consent/deep" not in browser_site.paths()  # two hops: beyond scan_depth 1


async def test_depth_pages_and_no_consent_phase(
    chromium: Chromium, browser_site: BrowserTestSite
) -> None:
    deeper = await Scan().run(
        chromium, scan_params(browser_site, scan_depth=2, accept_selector=None)
    )
    assert {item.data["phase"] for item in deeper} == {"before_consent"}
    assert set(by_phase(deeper, "before_consent")) == {"session", "visited_about", "custom", "deep"}

    browser_site.requests.clear()
    start_only = await Scan().run(
        chromium, scan_params(browser_site, max_pages=1, accept_selector=None)
    )
    assert set(by_phase(start_only, "before_consent")) == {"session"}
    visited = [p for p in browser_site.paths() if p not in ("/favicon.ico", "/robots.txt")]
    assert visited == ["/consent"]


async def test_every_scan_starts_with_an_empty_cookie_jar(
    chromium: Chromium, browser_site: BrowserTestSite
) -> None:
    first = await Scan().run(chromium, scan_params(browser_site))
    second = await Scan().run(chromium, scan_params(browser_site))
    assert "consent" in by_phase(first, "after_consent")
    assert set(by_phase(second, "before_consent")) == set(by_phase(first, "before_consent"))
    assert "consent" not in by_phase(second, "before_consent")


async def test_a_missing_consent_control_fails_after_the_first_phase(
    chromium: Chromium, browser_site: BrowserTestSite
) -> None:
    scan = Scan()
    with pytest.raises(TransientScrapeError, match=r"consent control '#nope' not found"):
        await scan.run(
            chromium, scan_params(browser_site, accept_selector="#nope", consent_timeout_seconds=1)
        )
    assert {item.data["phase"] for item in scan.items} == {"before_consent"}
    assert len(scan.screenshots) == 1


async def test_a_linked_page_that_fails_is_skipped_not_fatal(
    chromium: Chromium, browser_site: BrowserTestSite
) -> None:
    scan = Scan()
    params = scan_params(browser_site, custom_pages=["/missing"], accept_selector=None)
    items = await scan.run(chromium, params)
    assert scan.skipped_pages == [(f"{browser_site.url}/missing", "page_failed")]
    assert "session" in by_phase(items, "before_consent")


async def test_pages_robots_txt_disallows_are_skipped_and_counted(
    chromium: Chromium, browser_site: BrowserTestSite
) -> None:
    scan = Scan()
    private = f"{browser_site.url}/private"
    items = await scan.run(
        chromium, scan_params(browser_site, url=private, custom_pages=["/consent"])
    )
    assert scan.skipped_pages == [(private, "robots_txt")]
    assert scan.metadata["consent"] == "clicked", "on the first page scanned: /consent"
    assert {"session", "visited_about"} <= set(by_phase(items, "before_consent"))
    assert "consent" in by_phase(items, "after_consent")
    assert "/private" not in browser_site.paths()

    refused = Scan()
    with pytest.raises(PermanentScrapeError, match="robots.txt disallows every URL"):
        await refused.run(chromium, scan_params(browser_site, url=private, custom_pages=[]))
    assert refused.items == [] and refused.screenshots == []


def test_registrable_domains() -> None:
    assert registrable_domain("www.example.co.uk") == "example.co.uk"
    assert registrable_domain(".cdn.example.com") == "example.com"
    assert registrable_domain("127.0.0.1") == "127.0.0.1"
    assert registrable_domain("localhost") == "localhost"


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"custom_pages": ["about"]}, "neither a path"),
        ({"accept_selector": "button[["}, "invalid CSS selector"),
        ({"max_pages": 0}, "max_pages"),
        ({"scan_depth": 11}, "scan_depth"),
        ({"maxPages": 5}, "maxPages"),
    ],
    ids=["relative-page", "bad-css", "no-pages", "too-deep", "seed-spelling"],
)
async def test_invalid_params_are_refused(change: dict[str, Any], complaint: str) -> None:
    params = {"url": "http://127.0.0.1:9/", **change}
    with pytest.raises(InvalidParamsError, match=complaint):
        await Scan().run(Chromium("/nonexistent/chromium"), params)
