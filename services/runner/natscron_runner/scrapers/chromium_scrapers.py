"""The scrapers that drive Chromium, sharing the runner's one browser (imports Playwright)."""

from natscron_runner.scrapers.base import Scraper
from natscron_runner.scrapers.browser_scraper import BrowserScraper
from natscron_runner.scrapers.chromium import Chromium
from natscron_runner.scrapers.cookie_scan import CookieScanScraper


def chromium_scrapers(executable: str) -> dict[str, Scraper]:
    chromium = Chromium(executable)
    return {"browser": BrowserScraper(chromium), "cookie_scan": CookieScanScraper(chromium)}
