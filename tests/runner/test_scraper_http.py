"""The `http` scraper against the demo listings site, served for real on localhost."""

from collections.abc import AsyncIterator
from typing import Any

import pytest

from natscron.demo import PAGE_SIZE, DemoListingsSite, listing_count, listing_params, page_count
from natscron_runner.scrapers import (
    InvalidParamsError,
    PermanentScrapeError,
    ScrapeContext,
    TransientScrapeError,
)
from natscron_runner.scrapers.http_scraper import HttpScraper
from natscron_shared.contract.messages import ScrapedItem


@pytest.fixture
async def site() -> AsyncIterator[DemoListingsSite]:
    demo = DemoListingsSite()
    await demo.start()
    yield demo
    await demo.stop()


async def scrape(params: dict[str, Any], skipped: list[str] | None = None) -> list[ScrapedItem]:
    reasons = [] if skipped is None else skipped
    context = ScrapeContext(job_id="job-1", scheduled_job_id=None, attempt=1, skip=reasons.append)
    return [item async for item in HttpScraper().scrape(params, context)]


async def test_reads_every_page_following_next_links(site: DemoListingsSite) -> None:
    items = await scrape(listing_params(site.url, "austin-tx", "for_rent"))

    expected = listing_count("austin-tx", "for_rent")
    pages = page_count("austin-tx", "for_rent")
    assert pages >= 2
    assert len(items) == expected
    assert [item.key for item in items] == [
        f"austin-tx-for_rent-{index:04d}" for index in range(expected)
    ]
    assert site.requested == [
        "/robots.txt",
        *(f"/listings/austin-tx?type=for_rent&page={page}" for page in range(1, pages + 1)),
    ]
    first = items[0].data
    assert first["listing_id"] == items[0].key
    assert first["address"].endswith("Austin, TX")
    assert first["price"].isdigit() and first["beds"].isdigit()
    assert first["url"] == f"/listing/{items[0].key}"


async def test_limit_stops_early_and_max_pages_caps_pages(site: DemoListingsSite) -> None:
    limited = await scrape({**listing_params(site.url, "austin-tx"), "limit": PAGE_SIZE + 3})
    assert len(limited) == PAGE_SIZE + 3
    assert len(site.requested) == 1 + 2, "robots.txt, then two pages"

    one_page = await scrape({**listing_params(site.url, "austin-tx"), "max_pages": 1})
    assert len(one_page) == PAGE_SIZE
    assert len(site.requested) == 3 + 1 + 1


async def test_several_urls_are_scraped_in_turn(site: DemoListingsSite) -> None:
    params = listing_params(site.url, "austin-tx")
    params["urls"] += listing_params(site.url, "denver-co")["urls"]
    items = await scrape(params)
    assert len(items) == listing_count("austin-tx", "for_sale") + listing_count(
        "denver-co", "for_sale"
    )


async def test_items_without_a_key_are_skipped_and_reported(site: DemoListingsSite) -> None:
    params = listing_params(site.url, "austin-tx")
    params["fields"] = {**params["fields"], "missing": ".no-such-thing"}
    params["key_field"] = "missing"
    skipped: list[str] = []
    assert await scrape({**params, "max_pages": 1}, skipped) == []
    assert skipped == ["missing_key"] * PAGE_SIZE


async def test_server_errors_are_transient_and_client_errors_permanent(
    site: DemoListingsSite,
) -> None:
    site.fail_status = 500
    with pytest.raises(TransientScrapeError, match="HTTP 500"):
        await scrape(listing_params(site.url, "austin-tx"))
    site.fail_status = None
    params = listing_params(site.url, "austin-tx")
    with pytest.raises(PermanentScrapeError, match="HTTP 404"):
        await scrape({**params, "urls": [f"{site.url}/no/such/page"]})


async def test_unreachable_site_is_transient(site: DemoListingsSite) -> None:
    params = listing_params(site.url, "austin-tx")
    await site.stop()
    with pytest.raises(TransientScrapeError, match="could not fetch"):
        await scrape(params)


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"urls": ["ftp://example.com/listings"]}, "not an http"),
        ({"urls": []}, "urls"),
        ({"item_selector": "article[[["}, "invalid CSS selector"),
        ({"key_field": "nope"}, "key_field 'nope' is not one of fields"),
        ({"fields": {"listing_id": "a@"}}, "names no attribute"),
        ({"max_pages": 0}, "max_pages"),
        ({"surprise": True}, "surprise"),
    ],
    ids=["ftp-url", "no-urls", "bad-css", "unknown-key-field", "empty-attr", "zero-pages", "extra"],
)
async def test_invalid_params_are_a_permanent_error(change: dict[str, Any], complaint: str) -> None:
    params = {**listing_params("http://127.0.0.1:9", "austin-tx"), **change}
    with pytest.raises(InvalidParamsError, match=complaint):
        await scrape(params)


async def test_reports_the_pages_it_fetched_as_the_run_metadata(site: DemoListingsSite) -> None:
    context = ScrapeContext(job_id="job-1", scheduled_job_id=None, attempt=1)
    params = listing_params(site.url, "austin-tx", "for_rent")
    items = [item async for item in HttpScraper().scrape(params, context)]
    assert items
    assert context.metadata == {"pages_fetched": page_count("austin-tx", "for_rent")}
