"""The `crawl` scraper on its own (in-process politeness, an in-memory checkpoint) against
link graphs with cycles served on 127.0.0.1."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from natscron_runner.scrapers import PermanentScrapeError, ScrapeContext
from natscron_runner.scrapers.base import MemoryCheckpoint
from natscron_runner.scrapers.crawl_scraper import CrawlScraper
from natscron_runner.scrapers.frontier import Frontier
from natscron_shared.contract.messages import ScrapedItem
from tests.runner.sites import Reply, graph_route, link_page, serving

GRAPH = {
    "/": ["/a", "/b", "/b#top", "/a/../b", "http://elsewhere.invalid/x", "mailto:x@y"],
    "/a": ["/", "/b", "/a/deep"],
    "/b": ["/a", "/c?z=1&y=2"],
    "/c?y=2&z=1": ["/"],
    "/a/deep": ["/a/deeper", "/a"],
    "/a/deeper": ["/a/deepest"],
    "/a/deepest": [],
}


@dataclass
class Run:
    items: list[ScrapedItem] = field(default_factory=list)
    skipped_pages: list[tuple[str, str]] = field(default_factory=list)
    checkpoint: MemoryCheckpoint = field(default_factory=MemoryCheckpoint)

    def context(self) -> ScrapeContext:
        return ScrapeContext(
            job_id="crawl-1",
            scheduled_job_id=None,
            attempt=1,
            skip_page=lambda url, reason: self.skipped_pages.append((url, reason)),
            checkpoint=self.checkpoint,
        )


async def crawl(params: dict[str, Any], run: Run | None = None) -> Run:
    run = run or Run()
    async for item in CrawlScraper().scrape(params, run.context()):
        run.items.append(item)
    return run


def graph_site(robots: str | None = None) -> Callable[[str], Reply]:
    return graph_route(GRAPH, robots)


async def test_each_page_once_within_the_depth_despite_cycles() -> None:
    async with serving(graph_site()) as site:
        run = await crawl({"urls": [site.url + "/"], "max_depth": 2})
    assert site.counts() == {
        "/robots.txt": 1,
        "/": 1,
        "/a": 1,
        "/b": 1,
        "/a/deep": 1,
        "/c?y=2&z=1": 1,
    }, "depth 3 (/a/deeper) is not fetched, nor anything twice"
    assert [item.key for item in run.items] == [
        f"{site.url}{path}" for path in ("/", "/a", "/b", "/a/deep", "/c?y=2&z=1")
    ]
    assert run.items[0].data == {"url": site.url + "/", "depth": 0}
    assert run.items[-1].data["depth"] == 2
    assert run.skipped_pages == []


async def test_max_pages_takes_the_shallowest_pages_first() -> None:
    async with serving(graph_site()) as site:
        run = await crawl({"urls": [site.url + "/"], "max_depth": 10, "max_pages": 3})
    assert site.pages() == ["/", "/a", "/b"]
    assert len(run.items) == 3


async def test_items_are_read_with_field_specs() -> None:
    listing = Reply(
        body='<ul><li class="item"><b>one</b><a href="/">home</a></li>'
        '<li class="item"><b>two</b></li><li class="item"></li></ul>'
    )
    async with serving(lambda t: listing if t == "/list" else link_page(t, [])) as site:
        run = await crawl(
            {
                "urls": [site.url + "/list"],
                "item_selector": "li.item",
                "fields": {"name": "b", "link": "a@href"},
                "key_field": "name",
            }
        )
    assert [(item.key, item.data) for item in run.items] == [
        ("one", {"name": "one", "link": "/"}),
        ("two", {"name": "two", "link": None}),
    ]
    assert site.pages() == ["/list", "/"]


async def test_robots_txt_disallows_pages_which_are_counted_once() -> None:
    robots = "User-agent: *\nDisallow: /b\n"
    async with serving(graph_site(robots)) as site:
        run = await crawl({"urls": [site.url + "/"], "max_depth": 2})
    assert site.fetches("/b") == 0 and site.fetches("/robots.txt") == 1
    assert run.skipped_pages == [(site.url + "/b", "robots_txt")]
    assert {hit.target for hit in site.hits} == {"/robots.txt", "/", "/a", "/a/deep"}


async def test_a_run_whose_every_url_is_disallowed_fails_naming_robots_txt() -> None:
    async with serving(graph_site("User-agent: natscron\nDisallow: /\n")) as site:
        with pytest.raises(PermanentScrapeError, match=r"robots\.txt disallows every URL"):
            await crawl({"urls": [site.url + "/", site.url + "/a"]})
        assert site.pages() == []
        other_agent = await crawl({"urls": [site.url + "/"], "user_agent": "otherbot/1.0"})
        assert len(other_agent.items) > 1, "the group names natscron only"
        ignoring = await crawl({"urls": [site.url + "/"], "max_depth": 0, "obey_robots": False})
    assert [item.key for item in ignoring.items] == [site.url + "/"]


async def test_retry_after_is_waited_for_before_the_page_is_asked_again() -> None:
    answers = {"/a": [Reply(429, "slow down", headers={"Retry-After": "1"})]}

    def route(target: str) -> Reply:
        queued = answers.get(target)
        if queued:
            return queued.pop(0)
        return graph_site()(target)

    async with serving(route) as site:
        run = await crawl({"urls": [site.url + "/"], "max_depth": 1})
    asked = [hit.at for hit in site.hits if hit.target == "/a"]
    assert len(asked) == 2 and asked[1] - asked[0] >= 1.0, asked
    assert [item.key for item in run.items] == [site.url + p for p in ("/", "/a", "/b")]


async def test_redirects_are_followed_hop_by_hop_under_robots_txt() -> None:
    def route(target: str) -> Reply:
        if target == "/old":
            return Reply(301, headers={"Location": "/a"})
        if target == "/to-secret":
            return Reply(302, headers={"Location": "/secret"})
        if target == "/robots.txt":
            return Reply(200, "User-agent: *\nDisallow: /secret\n", "text/plain")
        return link_page(target, [])

    async with serving(route) as site:
        run = await crawl({"urls": [site.url + "/old", site.url + "/to-secret"]})
    assert site.pages() == ["/old", "/a", "/to-secret"]
    assert [item.data["url"] for item in run.items] == [site.url + "/a"]
    assert run.skipped_pages == [(site.url + "/secret", "robots_txt")]


async def test_a_resumed_crawl_fetches_nothing_again_and_skips_the_page_in_flight() -> None:
    async with serving(graph_site()) as site:
        frontier = Frontier.start([site.url + "/a", site.url + "/b"], max_queue=10)
        frontier.offer(site.url + "/", 0)
        frontier.next()
        frontier.in_flight = (site.url + "/a", 0)
        frontier.fetched = 3
        run = Run()
        run.checkpoint.state = frontier.to_state()
        await crawl({"urls": [site.url + "/"], "max_depth": 0}, run)
    assert site.pages() == ["/b", "/"]
    assert run.skipped_pages == [(site.url + "/a", "interrupted")]
    saved = Frontier.from_state(run.checkpoint.state or {})
    assert saved.fetched == 3 + 1, "saved before its last fetch"


async def test_client_errors_skip_a_page_and_server_errors_fail_the_attempt() -> None:
    def route(target: str) -> Reply:
        if target == "/gone":
            return Reply(404, "gone")
        if target == "/data.json":
            return Reply(200, "{}", "application/json")
        if target == "/broken":
            return Reply(500, "oops")
        return link_page(target, ["/gone", "/data.json"])

    async with serving(route) as site:
        run = await crawl({"urls": [site.url + "/"]})
        assert sorted(reason for _, reason in run.skipped_pages) == ["http_404", "not_html"]
        broken = Run()
        with pytest.raises(Exception, match="HTTP 500"):
            await crawl({"urls": [site.url + "/", site.url + "/broken"]}, broken)
    saved = Frontier.from_state(broken.checkpoint.state or {})
    assert saved.in_flight is None and saved.queue[0] == (site.url + "/broken", 0), (
        "the page is first in line for the retry"
    )


async def test_a_site_with_its_own_cookie_and_headers_sees_them() -> None:
    async with serving(graph_site()) as site:
        await crawl(
            {
                "urls": [site.url + "/"],
                "max_depth": 0,
                "headers": {"X-Team": "scrapers"},
                "cookies": {"session": "abc"},
                "user_agent": "team-bot/2.0",
            }
        )
    page = [hit for hit in site.hits if hit.target == "/"][0]
    assert page.headers["x-team"] == "scrapers"
    assert page.headers["cookie"] == "session=abc"
    assert page.headers["user-agent"] == "team-bot/2.0"
    assert [hit.headers["user-agent"] for hit in site.hits][0] == "team-bot/2.0", "robots.txt too"
