"""The `browser` scraper's page loads pass polite fetching like `http`'s requests: robots.txt,
the per-host limits shared by two runners through NATS KV, and the schedule's user agent,
headers, cookies and proxy, against a site that logs every request with its headers."""

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from natscron_runner.scrapers import PermanentScrapeError
from natscron_runner.scrapers.browser_rules import proxy_settings
from natscron_runner.scrapers.browser_scraper import BrowserScraper
from natscron_runner.scrapers.chromium import Chromium
from natscron_runner.scrapers.polite import FetchRules, Permit, Politeness, PoliteSettings
from natscron_runner.scrapers.polite.local_hosts import LocalHosts
from natscron_shared.runtime.clock import SystemClock
from tests.runner.sites import CountingProxy, Reply, serving
from tests.runner.test_polite_shared import none_before_its_turn, runner_hosts, spacing
from tests.runner.test_scraper_browser import Scrape
from tests.servers import Server

pytestmark = pytest.mark.integration  # a real Chromium, a real nats-server

USER_AGENT = "natscron-browser-test/1"
ROBOTS_TXT = "User-agent: *\nDisallow: /private\n"
PAGE_DELAY_SECONDS = 0.5
"""Long enough that, spaced by the rate limit alone, three loads would overlap."""
RATE = 5.0
NO_FAVICON = '<link rel="icon" href="data:,">'
"""So the browser asks the site for its pages only (no /favicon.ico beside them)."""


class NotedPoliteness(Politeness):
    """Notes when it lets each request go. The rate limit spaces the starts it reserves
    (`NotedHosts`); a request is let go at its start or, when its task resumes late (this
    loop also drives Chromium), after it. A browser's request reaches the site up to a few
    hundred milliseconds later still (the first load of a context starts a renderer)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.let_go: list[datetime] = []

    @contextlib.asynccontextmanager
    async def fetching(self, url: str, rules: FetchRules) -> AsyncIterator[Permit]:
        async with super().fetching(url, rules) as permit:
            self.let_go.append(SystemClock().now())
            yield permit


def route(target: str) -> Reply:
    """`/robots.txt` disallows `/private`; `/list/<n>` holds item `<n>`; the rest 404."""
    if target == "/robots.txt":
        return Reply(200, ROBOTS_TXT, "text/plain")
    found = re.fullmatch(r"/list/(\d+)", target)
    if found is None:
        return Reply(404, f"<html><head>{NO_FAVICON}</head><body>not found</body></html>")
    item = f'<li class="item" data-id="{found[1]}"><span class="title">Item</span></li>'
    body = f"<html><head>{NO_FAVICON}</head><body><ul>{item}</ul></body></html>"
    return Reply(body=body, delay=PAGE_DELAY_SECONDS)


def params(urls: list[str], **more: Any) -> dict[str, Any]:
    return {
        "urls": urls,
        "item_selector": "li.item",
        "fields": {"id": "@data-id", "title": ".title"},
        "key_field": "id",
        "network_idle_seconds": 0,
        "page_timeout_seconds": 10,
        **more,
    }


async def test_browser_loads_obey_robots_txt_the_shared_host_limits_and_the_fetch_params(
    chromium: Chromium, nats_server: Server
) -> None:
    settings = PoliteSettings(max_in_flight=2)
    fetch_params = {
        "user_agent": USER_AGENT,
        "headers": {"X-Team": "seeds"},
        "cookies": {"session": "abc"},
        "max_requests_per_second": RATE,
    }
    async with (
        runner_hosts(nats_server, "runner-a") as hosts_a,
        runner_hosts(nats_server, "runner-b") as hosts_b,
        serving(route) as site,
    ):
        a = NotedPoliteness(hosts_a, settings, SystemClock())
        b = NotedPoliteness(hosts_b, settings, SystemClock())
        scrapes = [Scrape(polite) for polite in (a, b, a, b)]
        found = await asyncio.gather(
            *(
                scrape.run(
                    BrowserScraper(chromium),
                    params([f"{site.url}/private/{n}", f"{site.url}/list/{n}"], **fetch_params),
                )
                for n, scrape in enumerate(scrapes)
            )
        )
        refused = Scrape(a)
        with pytest.raises(PermanentScrapeError, match="robots.txt disallows every URL"):
            await refused.run(BrowserScraper(chromium), params([f"{site.url}/private/x"]))

    assert [[item.key for item in items] for items in found] == [["0"], ["1"], ["2"], ["3"]]
    for n, scrape in enumerate(scrapes):
        assert scrape.skipped_pages == [(f"{site.url}/private/{n}", "robots_txt")]
        assert scrape.metadata == {"pages_fetched": 1}
    assert refused.skipped_pages == [(f"{site.url}/private/x", "robots_txt")]
    assert refused.screenshots == [], "no page was loaded, so none is pictured"

    assert sorted(site.pages()) == ["/list/0", "/list/1", "/list/2", "/list/3"]
    assert site.fetches("/robots.txt") == 2, "once per runner"
    assert max(hit.in_flight for hit in site.hits) == 2, "both runners' loads, two at most"
    turns = sorted(hosts_a.reserved + hosts_b.reserved)
    let_go = a.let_go + b.let_go
    assert len(turns) == len(let_go) == len(site.hits), "the gate let go all the site saw"
    assert min(spacing(turns)) >= timedelta(seconds=1 / RATE), spacing(turns)
    assert none_before_its_turn(turns, let_go), "a request was let go before its turn"
    assert {hit.headers.get("user-agent") for hit in site.hits} == {USER_AGENT}
    pages = [hit for hit in site.hits if hit.target != "/robots.txt"]
    assert {hit.headers.get("x-team") for hit in pages} == {"seeds"}
    assert {hit.headers.get("cookie") for hit in pages} == {"session=abc"}


async def test_a_named_proxy_carries_the_browsers_loads_with_its_credentials(
    chromium: Chromium,
) -> None:
    proxy = CountingProxy(challenge=True)
    await proxy.start()
    environ = {"NATSCRON_PROXY_CORP": f"http://scraper:s3cret@127.0.0.1:{proxy.port}"}
    polite = Politeness(LocalHosts(), PoliteSettings(), SystemClock(), environ=environ)
    try:
        async with serving(route) as site:
            page = f"{site.url}/list/7"
            items = await Scrape(polite).run(BrowserScraper(chromium), params([page], proxy="corp"))
    finally:
        await proxy.stop()
    assert [item.key for item in items] == ["7"]
    assert page in {hit.target for hit in proxy.hits}
    assert proxy.credentials() == {"scraper:s3cret"}
    relayed = [hit for hit in proxy.hits if "proxy-authorization" in hit.headers]
    assert len(site.hits) == len(relayed), "the site saw only what the proxy relayed"


def test_proxy_credentials_are_given_apart_from_the_server() -> None:
    assert proxy_settings("http://us%40er:p%3Ass@proxy.internal:3128") == {
        "server": "http://proxy.internal:3128",
        "username": "us@er",
        "password": "p:ss",
    }
    assert proxy_settings("http://127.0.0.1:8080") == {"server": "http://127.0.0.1:8080"}
