"""Scrapers by name: the built-ins, then the `natscron.scrapers` entry-point group.

A run request only ever names a scraper; what code runs is decided here, by what is
installed, so a message can never make the runner import anything.
"""

import logging
from collections.abc import Awaitable, Callable, Mapping
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

from natscron_runner.scrapers.base import Scraper
from natscron_runner.scrapers.browser_support import chromium_executable, why_no_browser
from natscron_runner.scrapers.crawl_scraper import CrawlScraper
from natscron_runner.scrapers.errors import PermanentScrapeError
from natscron_runner.scrapers.http_scraper import HttpScraper
from natscron_runner.scrapers.noop import NoopScraper
from natscron_shared.contract.errors import UnknownScraperError

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "natscron.scrapers"


def browser_scrapers(chromium_path: Path | None) -> dict[str, Scraper]:
    """`browser` and `cookie_scan`, sharing one Chromium, when this runner can launch it;
    otherwise none, and a log line says why."""
    reason = why_no_browser(chromium_path)
    executable = chromium_executable(chromium_path)
    if reason is not None or executable is None:
        log.info("not offering the browser and cookie_scan scrapers: %s", reason)
        return {}
    # Imported here: Playwright is an optional extra, absent from plain runners.
    from natscron_runner.scrapers.chromium_scrapers import chromium_scrapers

    return chromium_scrapers(executable)


def builtin_scrapers(chromium_path: Path | None = None) -> dict[str, Scraper]:
    return {
        "crawl": CrawlScraper(),
        "http": HttpScraper(),
        "noop": NoopScraper(),
        **browser_scrapers(chromium_path),
    }


class ScraperRegistry:
    """Resolves names; `extra` scrapers win over built-ins, built-ins over plugins.

    A plugin entry point names a zero-argument callable (a class will do) returning a
    `Scraper`; it is loaded on first use and kept. `close` lets go of what the scrapers
    hold (the browser): each one's `aclose`, if it has one.
    """

    def __init__(
        self,
        extra: Mapping[str, Scraper] | None = None,
        *,
        load_plugins: bool = True,
        chromium_path: Path | None = None,
    ) -> None:
        self._scrapers: dict[str, Scraper] = {**builtin_scrapers(chromium_path), **(extra or {})}
        self._plugins: dict[str, EntryPoint] = {}
        if load_plugins:
            for entry_point in entry_points(group=ENTRY_POINT_GROUP):
                if entry_point.name in self._scrapers:
                    log.warning(
                        "ignoring plugin scraper %r (%s): the name is taken",
                        entry_point.name,
                        entry_point.value,
                    )
                else:
                    self._plugins[entry_point.name] = entry_point

    def names(self) -> list[str]:
        return sorted({*self._scrapers, *self._plugins})

    def get(self, name: str) -> Scraper:
        scraper = self._scrapers.get(name)
        if scraper is not None:
            return scraper
        entry_point = self._plugins.get(name)
        if entry_point is None:
            raise UnknownScraperError(name)
        scraper = self._load(entry_point)
        self._scrapers[name] = scraper
        return scraper

    async def close(self) -> None:
        for name, scraper in self._scrapers.items():
            aclose: Callable[[], Awaitable[None]] | None = getattr(scraper, "aclose", None)
            if aclose is None:
                continue
            try:
                await aclose()
            except Exception:
                log.exception("scraper %r failed to close", name)

    @staticmethod
    def _load(entry_point: EntryPoint) -> Scraper:
        try:
            factory: Callable[[], Scraper] = entry_point.load()
            return factory()
        except Exception as exc:
            log.exception(
                "plugin scraper %r (%s) failed to load", entry_point.name, entry_point.value
            )
            raise PermanentScrapeError(
                f"scraper {entry_point.name!r} failed to load: {type(exc).__name__}: {exc}"
            ) from exc
