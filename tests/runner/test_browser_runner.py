"""The browser scrapers through a real runner: what it advertises, the items it publishes,
and the screenshot a failure keeps, served by the API."""

import httpx
import pytest
from nats.aio.client import Client
from pymongo.asynchronous.database import AsyncDatabase

from natscron_shared.contract import names
from natscron_shared.contract.enums import JobStatus
from natscron_shared.contract.pools import DEFAULT_POOL
from natscron_shared.contract.storage import Document
from natscron_shared.nats.scrapers_bucket import load_catalogue
from tests.api.api_support import store_runs
from tests.browser_site import JS_PAGES, PAGE_ITEMS, BrowserTestSite
from tests.conftest import StartRunner
from tests.runner.conftest import require_browser
from tests.runner.test_runner_service import Observer, run_request, submit
from tests.waiting import eventually

pytestmark = pytest.mark.integration

JPEG_START = b"\xff\xd8\xff"


@pytest.fixture
async def observer(nc: Client) -> Observer:
    watching = Observer()
    await watching.start(nc.jetstream())
    return watching


def listing(url: str) -> dict[str, object]:
    return {
        "urls": [url],
        "item_selector": "li.item",
        "fields": {"id": "@data-id", "title": ".title"},
        "key_field": "id",
        "next_page_selector": "a.next",
    }


async def test_the_runner_scrapes_js_rendered_pages_http_sees_empty(
    nc: Client, observer: Observer, start_runner: StartRunner, browser_site: BrowserTestSite
) -> None:
    require_browser()
    runner = await start_runner()
    catalogue = await load_catalogue(nc.jetstream())
    assert {"browser", "cookie_scan"} <= set(catalogue.names())
    browser = catalogue.entry(DEFAULT_POOL, "browser")
    assert browser.runner_id == runner.runner_id
    assert "steps" in browser.params_schema["properties"]

    params = listing(f"{browser_site.url}/js/1")
    rendered = await submit(nc, run_request(scraper="browser", params=params))
    fetched = await submit(nc, run_request(scraper="http", params=params))
    await observer.until_finished(rendered, fetched, within=60)

    done = observer.of(rendered)[-1]
    assert done.status is JobStatus.COMPLETED, done.error_message
    assert done.properties_scraped == JS_PAGES * PAGE_ITEMS
    assert observer.of(fetched)[-1].properties_scraped == 0

    async def keys() -> set[str]:
        return {i.key for b in observer.batches if b.job_id == rendered for i in b.items}

    found = await eventually(keys, lambda k: len(k) == JS_PAGES * PAGE_ITEMS, what="items")
    assert found == {f"p{page}-{i}" for page in (1, 2) for i in range(PAGE_ITEMS)}


async def test_a_failed_browser_job_keeps_a_screenshot_the_api_serves(
    nc: Client,
    observer: Observer,
    start_runner: StartRunner,
    browser_site: BrowserTestSite,
    http: httpx.AsyncClient,
    mongo_db: AsyncDatabase[Document],
) -> None:
    require_browser()
    runner = await start_runner()
    broken = await submit(
        nc, run_request(scraper="browser", params=listing(f"{browser_site.url}/broken"))
    )
    fine = await submit(nc, run_request(scraper="noop", params={}))
    await observer.until_finished(broken, fine, within=60)
    failed = observer.of(broken)[-1]
    assert failed.status is JobStatus.FAILED
    assert failed.error_message is not None and "answered HTTP 500" in failed.error_message

    bucket = await nc.jetstream().key_value(names.KV_SCREENSHOTS)
    stored = (await bucket.get(names.screenshot_key(broken, 1))).value
    assert stored is not None and stored.startswith(JPEG_START)
    assert (
        runner.registry.get_sample_value("natscron_runner_screenshots_total", {"outcome": "kept"})
        == 1
    )

    await store_runs(mongo_db, [failed, observer.of(fine)[-1]])  # as the recorder would
    answer = await http.get(f"/api/v1/executions/{broken}/screenshot")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/jpeg"
    assert answer.headers["x-natscron-attempt"] == "1"
    assert answer.content == stored

    none_kept = await http.get(f"/api/v1/executions/{fine}/screenshot")
    assert none_kept.status_code == 404 and none_kept.json()["error"]["code"] == "no_screenshot"
    unknown = await http.get("/api/v1/executions/no_such_job/screenshot")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_job"
    other_attempt = await http.get(f"/api/v1/executions/{broken}/screenshot?attempt=2")
    assert other_attempt.status_code == 404
