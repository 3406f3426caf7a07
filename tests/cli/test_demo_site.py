"""The demo listings site: deterministic pages, drifting prices, errors on demand."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from bs4 import BeautifulSoup

from natscron.demo import PAGE_SIZE, DemoListingsSite, demo_schedules, listing_count, page_count
from natscron_runner.scrapers.http_params import HttpParams
from natscron_shared.runtime.clock import ManualClock
from natscron_shared.timing.cron import has_seconds

START = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture
async def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
async def site(clock: ManualClock) -> AsyncIterator[DemoListingsSite]:
    demo = DemoListingsSite(clock=clock)
    await demo.start()
    yield demo
    await demo.stop()


def articles(html: str) -> list[tuple[str, str]]:
    """(listing id, price) of each listing on a page."""
    soup = BeautifulSoup(html, "html.parser")
    found = []
    for tag in soup.select("article.listing"):
        price = tag.select_one(".price")
        assert price is not None
        found.append((str(tag["data-id"]), str(price["data-value"])))
    return found


async def test_pages_hold_every_listing_once_with_next_links(site: DemoListingsSite) -> None:
    pages = page_count("denver-co", "for_sale")
    seen: list[str] = []
    async with httpx.AsyncClient(base_url=site.url) as client:
        for page in range(1, pages + 1):
            response = await client.get("/listings/denver-co", params={"page": page})
            assert response.status_code == 200
            ids = [listing_id for listing_id, _ in articles(response.text)]
            assert len(ids) == (PAGE_SIZE if page < pages else len(ids))
            seen += ids
            has_next = BeautifulSoup(response.text, "html.parser").select_one("a.next")
            assert (has_next is not None) == (page < pages)
    assert len(seen) == len(set(seen)) == listing_count("denver-co", "for_sale")


async def test_unknown_paths_types_and_pages_are_404(site: DemoListingsSite) -> None:
    async with httpx.AsyncClient(base_url=site.url) as client:
        assert (await client.get("/")).status_code == 200
        assert (await client.get("/nope")).status_code == 404
        assert (await client.get("/listings/austin-tx?type=auction")).status_code == 404
        beyond = page_count("austin-tx", "for_sale") + 1
        assert (await client.get(f"/listings/austin-tx?page={beyond}")).status_code == 404
        assert (await client.post("/listings/austin-tx")).status_code == 405


async def test_fail_status_makes_every_request_fail(site: DemoListingsSite) -> None:
    site.fail_status = 503
    async with httpx.AsyncClient(base_url=site.url) as client:
        assert (await client.get("/listings/austin-tx")).status_code == 503
        site.fail_status = None
        assert (await client.get("/listings/austin-tx")).status_code == 200


async def test_listings_are_stable_but_prices_drift(clock: ManualClock) -> None:
    site = DemoListingsSite(clock=clock)
    before = articles(site.route("/listings/austin-tx?type=for_sale&page=1")[1])
    assert before == articles(site.route("/listings/austin-tx?type=for_sale&page=1")[1])
    await clock.advance(timedelta(seconds=10))
    after = articles(site.route("/listings/austin-tx?type=for_sale&page=1")[1])
    assert [i for i, _ in after] == [i for i, _ in before]
    assert [p for _, p in after] != [p for _, p in before]


def test_demo_schedules_scrape_the_site_every_10s_and_every_minute() -> None:
    schedules = demo_schedules("http://127.0.0.1:8123/")
    assert [s.cron_expression for s in schedules] == ["*/10 * * * * *", "* * * * *"]
    assert has_seconds(schedules[0].cron_expression or "")
    assert len({s.scheduled_job_id for s in schedules}) == 2
    for schedule in schedules:
        assert schedule.scraper == "http"
        params = HttpParams.model_validate(schedule.params)
        assert params.urls[0].startswith("http://127.0.0.1:8123/listings/")
