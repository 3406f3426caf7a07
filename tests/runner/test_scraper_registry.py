"""Scrapers by name: built-ins, extras, entry-point plugins; and the `noop` scraper."""

import logging
from collections.abc import AsyncIterator
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest

from natscron_runner.scrapers import (
    ENTRY_POINT_GROUP,
    InvalidParamsError,
    PermanentScrapeError,
    ScrapeContext,
    ScraperRegistry,
)
from natscron_runner.scrapers import registry as registry_module
from natscron_runner.scrapers.noop import NoopScraper
from natscron_shared.contract.errors import UnknownScraperError
from natscron_shared.contract.messages import ScrapedItem


class FixedScraper:
    """Yields one item; also the target of the fake plugin entry point below."""

    async def scrape(
        self, params: dict[str, Any], context: ScrapeContext
    ) -> AsyncIterator[ScrapedItem]:
        yield ScrapedItem(key=f"fixed-{context.job_id}", data=params)


def broken_factory() -> FixedScraper:
    raise ImportError("a dependency is missing")


def context(attempt: int = 1) -> ScrapeContext:
    return ScrapeContext(job_id="j1", scheduled_job_id="s1", attempt=attempt)


async def collect(registry: ScraperRegistry, name: str, params: dict[str, Any]) -> list[str]:
    return [item.key async for item in registry.get(name).scrape(params, context())]


def test_builtins_are_registered_and_unknown_names_raise() -> None:
    registry = ScraperRegistry(load_plugins=False)
    assert registry.names() == ["browser", "cookie_scan", "crawl", "http", "noop"]
    with pytest.raises(UnknownScraperError, match="'os.system'") as caught:
        registry.get("os.system")
    assert caught.value.code == "unknown_scraper"


def test_without_a_chromium_the_browser_scrapers_are_not_offered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    missing = Path("/nonexistent/chromium")
    registry = ScraperRegistry(load_plugins=False, chromium_path=missing)
    assert registry.names() == ["crawl", "http", "noop"]
    assert (
        "not offering the browser and cookie_scan scrapers:"
        f" NATSCRON_CHROMIUM_PATH={missing} is not an executable file"
    ) in caplog.text


async def test_extra_scrapers_are_found_and_win_over_builtins() -> None:
    registry = ScraperRegistry({"fixed": FixedScraper(), "noop": FixedScraper()})
    assert {"crawl", "fixed", "http", "noop"} <= set(registry.names())
    assert await collect(registry, "fixed", {"a": 1}) == ["fixed-j1"]
    assert await collect(registry, "noop", {}) == ["fixed-j1"]


async def test_plugins_come_from_the_entry_point_group(monkeypatch: pytest.MonkeyPatch) -> None:
    plugins = [
        EntryPoint("fixed", f"{__name__}:FixedScraper", ENTRY_POINT_GROUP),
        EntryPoint("broken", f"{__name__}:broken_factory", ENTRY_POINT_GROUP),
        EntryPoint("http", f"{__name__}:FixedScraper", ENTRY_POINT_GROUP),
    ]
    seen_groups: list[str] = []

    def fake_entry_points(*, group: str) -> list[EntryPoint]:
        seen_groups.append(group)
        return plugins

    monkeypatch.setattr(registry_module, "entry_points", fake_entry_points)
    registry = ScraperRegistry()
    assert seen_groups == ["natscron.scrapers"]
    assert registry.names() == [
        "broken",
        "browser",
        "cookie_scan",
        "crawl",
        "fixed",
        "http",
        "noop",
    ]
    assert await collect(registry, "fixed", {}) == ["fixed-j1"]
    assert registry.get("fixed") is registry.get("fixed")
    assert registry.get("http") is not None and not isinstance(registry.get("http"), FixedScraper)
    with pytest.raises(PermanentScrapeError, match="'broken' failed to load: ImportError"):
        registry.get("broken")


async def test_noop_yields_items_and_fails_the_first_attempts() -> None:
    scraper = NoopScraper()
    items = [item async for item in scraper.scrape({"items": 3}, context())]
    assert [item.key for item in items] == ["noop-j1-0", "noop-j1-1", "noop-j1-2"]

    params = {"items": 1, "fail_attempts": 2}
    for attempt in (1, 2):
        with pytest.raises(RuntimeError, match=f"attempt {attempt} of 2"):
            _ = [item async for item in scraper.scrape(params, context(attempt))]
    assert len([item async for item in scraper.scrape(params, context(3))]) == 1


@pytest.mark.parametrize(
    "params",
    [{"items": -1}, {"items": "many"}, {"delay_seconds": -2}, {"unknown": 1}],
    ids=["negative", "not-a-number", "negative-delay", "unknown-field"],
)
async def test_noop_rejects_invalid_params(params: dict[str, Any]) -> None:
    with pytest.raises(InvalidParamsError, match="invalid params for scraper 'noop'"):
        _ = [item async for item in NoopScraper().scrape(params, context())]
