"""The `crawl` and `http` scrapers in a runner on a real nats-server: what their runs say
(skipped pages, robots.txt), a retry that resumes the crawl, the checkpoint's life, and a
proxy named by the schedule with its URL from the runner's environment."""

import pytest
from nats.aio.client import Client
from nats.js.errors import KeyNotFoundError

from natscron_runner import RunnerService
from natscron_shared.contract import names
from natscron_shared.contract.enums import JobStatus
from tests.conftest import StartRunner
from tests.runner.sites import CountingProxy, Reply, graph_route, link_page, serving
from tests.runner.test_runner_service import Observer, observer, run_request, sample, submit

__all__ = ["observer"]

pytestmark = pytest.mark.integration

CHAIN = {f"/p{n}": [f"/p{n + 1}"] for n in range(6)} | {"/p6": ["/p0"]}
"""A cycle of seven pages, each one deeper than the last."""


async def checkpoint_gone(nc: Client, job_id: str) -> bool:
    bucket = await nc.jetstream().key_value(names.KV_CHECKPOINTS)
    try:
        await bucket.get(job_id)
    except KeyNotFoundError:
        return True
    return False


async def test_a_crawl_completes_with_its_items_and_its_checkpoint_is_deleted(
    start_runner: StartRunner, nc: Client, observer: Observer
) -> None:
    await start_runner()
    async with serving(graph_route(CHAIN)) as site:
        job_id = await submit(
            nc, run_request("crawl", params={"urls": [site.url + "/p0"], "max_depth": 10})
        )
        await observer.until_finished(job_id)
    final = observer.of(job_id)[-1]
    assert final.status is JobStatus.COMPLETED, final.error_message
    assert final.properties_scraped == 7 and final.skipped_pages is None
    keys = [item.key for batch in observer.batches for item in batch.items]
    assert keys == [f"{site.url}/p{n}" for n in range(7)]
    assert site.counts() == {"/robots.txt": 1, **{f"/p{n}": 1 for n in range(7)}}
    assert await checkpoint_gone(nc, job_id)


async def test_a_failed_attempt_is_retried_from_its_checkpoint(
    start_runner: StartRunner, nc: Client, observer: Observer
) -> None:
    """Attempt 1 fetches p0..p2, p3 answers 500; attempt 2 starts at p3, fetching no page
    again, and its items follow the first attempt's in ITEMS (no batch taken for a
    duplicate of one the first attempt stored)."""
    failures = {"/p3": [Reply(500, "down for a moment")]}
    chain = graph_route(CHAIN)

    def route(target: str) -> Reply:
        queued = failures.get(target)
        return queued.pop(0) if queued else chain(target)

    await start_runner()
    async with serving(route) as site:
        job_id = await submit(
            nc,
            run_request(
                "crawl",
                params={"urls": [site.url + "/p0"], "max_depth": 10},
                max_retries=1,
                retry_backoff_seconds=0.1,
            ),
        )
        await observer.until_finished(job_id)
    assert observer.steps(job_id)[-1] == ("completed", 2), observer.steps(job_id)
    pending = [e for e in observer.of(job_id) if e.status is JobStatus.PENDING and e.attempt == 2]
    assert "HTTP 500" in (pending[0].error_message or "")
    assert site.counts() == {
        "/robots.txt": 1,
        **{f"/p{n}": 1 for n in range(7)},
        "/p3": 2,
    }, "only the page that failed is asked again"
    keys = [item.key for batch in observer.batches for item in batch.items]
    assert keys == [f"{site.url}/p{n}" for n in range(7)]
    assert [batch.batch for batch in observer.batches] == list(range(len(observer.batches)))
    assert observer.of(job_id)[-1].properties_scraped == 7, "counted over both attempts"
    assert await checkpoint_gone(nc, job_id)


async def test_pages_robots_txt_disallows_are_counted_in_the_run(
    start_runner: StartRunner, nc: Client, observer: Observer
) -> None:
    runner: RunnerService = await start_runner()
    robots = "User-agent: *\nDisallow: /p2\nDisallow: /p4\n"
    graph = {"/": ["/p2", "/p3", "/p4"], "/p2": [], "/p3": ["/p4"], "/p4": []}
    async with serving(graph_route(graph, robots)) as site:
        crawl = await submit(nc, run_request("crawl", params={"urls": [site.url + "/"]}))
        everything_disallowed = await submit(
            nc, run_request("crawl", params={"urls": [site.url + "/p2", site.url + "/p4"]})
        )
        http = await submit(
            nc,
            run_request(
                "http",
                params={
                    "urls": [site.url + "/p4"],
                    "item_selector": "body",
                    "fields": {"title": "h1"},
                    "key_field": "title",
                },
            ),
        )
        await observer.until_finished(crawl, everything_disallowed, http)
    done = observer.of(crawl)[-1]
    assert done.status is JobStatus.COMPLETED and done.properties_scraped == 2
    assert done.skipped_pages == {"robots_txt": 2}
    for refused in (everything_disallowed, http):
        failed = observer.of(refused)[-1]
        assert failed.status is JobStatus.FAILED, failed.status
        assert "robots.txt disallows every URL" in (failed.error_message or "")
    assert observer.of(everything_disallowed)[-1].skipped_pages == {"robots_txt": 2}
    assert site.fetches("/p2") == site.fetches("/p4") == 0
    assert sample(runner, "natscron_runner_pages_skipped_total", reason="robots_txt") == 5


async def test_a_named_proxy_carries_every_request_with_its_credentials_from_the_environment(
    start_runner: StartRunner,
    nc: Client,
    observer: Observer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy = CountingProxy()
    await proxy.start()
    try:
        monkeypatch.setenv("NATSCRON_PROXY_CORP", f"http://scraper:s3cret@127.0.0.1:{proxy.port}")
        await start_runner()
        async with serving(lambda target: link_page(target, ["/next"])) as site:
            params = {"urls": [site.url + "/"], "max_depth": 1, "proxy": "corp"}
            job_id = await submit(nc, run_request("crawl", params=params))
            unknown = await submit(nc, run_request("crawl", params={**params, "proxy": "nope"}))
            await observer.until_finished(job_id, unknown)
    finally:
        await proxy.stop()
    assert observer.of(job_id)[-1].status is JobStatus.COMPLETED
    assert [hit.target for hit in proxy.hits] == [
        f"{site.url}/robots.txt",
        f"{site.url}/",
        f"{site.url}/next",
    ]
    assert proxy.credentials() == {"scraper:s3cret"}
    assert len(site.hits) == 3, "the site saw exactly what the proxy relayed"
    failed = observer.of(unknown)[-1]
    assert failed.status is JobStatus.FAILED
    assert "proxy 'nope' is not configured on runner: set NATSCRON_PROXY_NOPE" in (
        failed.error_message or ""
    )
    assert "s3cret" not in str([event.model_dump() for event in observer.events])
