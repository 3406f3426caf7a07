"""Scrapers against local sites: pages per second for `http` and `browser`, and the memory
of a runner process with N browser pages open.

Pages per second: `--concurrency` jobs at once (a runner's `NATSCRON_RUNNER_CONCURRENCY`,
4 by default), each scraping every page of one location of the demo listings site
(static HTML, 2-4 pages a location), repeated for `--seconds`; the scrapers run in this
process exactly as a runner calls them, without NATS (whose cost per page is nil next to
a page's). `browser` is measured on the same static pages with `network_idle_seconds` 0
(the load event suffices) and with its default (5 s bound; idle means 500 ms without a
request, so it costs at least that per page), and on the test site's JavaScript-rendered
pages, which `http` cannot read.

Every job passes one in-process polite gate (robots.txt fetched once per site) with a slot
per job, so the rates measure the scrapers, not the per-host limit (2 in flight by default)
that a runner's gate would hold one site to.

Memory: N contexts of the runner's one Chromium, each with a page open on a JS-rendered
listing; RSS and PSS (proportional: shared pages split between the processes that share
them) of this process and all its descendants (Chromium's browser, renderer, GPU/utility
processes and Playwright's driver), read from /proc.

Run: `.venv/bin/python bench/scrapers.py` (about a minute), `--seconds`, `--concurrency`,
`--pages 1,4,8`.
"""

import argparse
import asyncio
import os
import shutil
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python bench/scrapers.py` puts bench/, not the repo, on the path
    sys.path.insert(0, str(REPO))

from natscron.demo import DEMO_LOCATIONS, DemoListingsSite, listing_params  # noqa: E402
from natscron_runner.scrapers.base import ScrapeContext, Scraper  # noqa: E402
from natscron_runner.scrapers.browser_scraper import BrowserScraper  # noqa: E402
from natscron_runner.scrapers.browser_support import why_no_browser  # noqa: E402
from natscron_runner.scrapers.chromium import Chromium  # noqa: E402
from natscron_runner.scrapers.http_scraper import HttpScraper  # noqa: E402
from natscron_runner.scrapers.polite import Politeness, PoliteSettings  # noqa: E402
from natscron_runner.scrapers.polite.local_hosts import LocalHosts  # noqa: E402
from natscron_shared.runtime.clock import SystemClock  # noqa: E402
from tests.browser_site import BrowserTestSite  # noqa: E402

PAGE_KB = 1024


@dataclass(frozen=True)
class Throughput:
    name: str
    pages: int
    items: int
    seconds: float

    def line(self) -> str:
        return (
            f"{self.name:<34} {self.pages / self.seconds:8.1f} pages/s"
            f" {self.items / self.seconds:9.1f} items/s  ({self.pages} pages in"
            f" {self.seconds:.1f} s)"
        )


async def _scrape(scraper: Scraper, params: dict[str, Any], polite: Politeness) -> int:
    context = ScrapeContext(job_id="bench", scheduled_job_id=None, attempt=1, polite=polite)
    return len([item async for item in scraper.scrape(params, context)])


async def throughput(
    name: str,
    scraper: Scraper,
    jobs: Callable[[int], dict[str, Any]],
    pages_served: Callable[[], int],
    seconds: float,
    concurrency: int,
    polite: Politeness,
) -> Throughput:
    """`concurrency` workers start jobs until `seconds` have passed; count what they did."""
    deadline = time.monotonic() + seconds
    items = 0

    async def worker(offset: int) -> None:
        nonlocal items
        index = offset
        while time.monotonic() < deadline:
            scraped = await _scrape(scraper, jobs(index), polite)
            items += scraped
            index += concurrency

    before = pages_served()
    started = time.monotonic()
    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    return Throughput(name, pages_served() - before, items, time.monotonic() - started)


def _tree(root: int) -> list[int]:
    """`root` and every descendant, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, queue = [], [root]
    while queue:
        pid = queue.pop()
        found.append(pid)
        queue.extend(children.get(pid, []))
    return found


def _kb(path: Path, field: str) -> int:
    try:
        for line in path.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def memory_mb(root: int) -> tuple[float, float, int]:
    """RSS and PSS (MiB) of `root`'s process tree, and how many processes it has."""
    pids = _tree(root)
    rss = sum(_kb(Path(f"/proc/{pid}/status"), "VmRSS") for pid in pids)
    pss = sum(_kb(Path(f"/proc/{pid}/smaps_rollup"), "Pss") for pid in pids)
    return rss / PAGE_KB, pss / PAGE_KB, len(pids)


async def open_pages(chromium: Chromium, url: str, count: int) -> Callable[[], Awaitable[None]]:
    """`count` job contexts with a page each on `url`; returns what closes them."""
    stack: list[Any] = []
    for _ in range(count):
        manager = chromium.context()
        context = await manager.__aenter__()
        page = await context.new_page()
        await page.goto(url)
        await page.wait_for_selector("li.item")
        stack.append(manager)

    async def close() -> None:
        for manager in reversed(stack):
            await manager.__aexit__(None, None, None)

    return close


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--pages", default="1,4,8", help="browser pages open, comma-separated")
    options = parser.parse_args()
    reason = why_no_browser(None)
    if reason is not None:
        sys.exit(f"cannot benchmark the browser scraper: {reason}")

    demo = DemoListingsSite()
    await demo.start()
    site = BrowserTestSite()
    await site.start()
    chromium = Chromium(shutil.which("chromium") or "chromium")
    try:
        locations = [(slug, kind) for slug in DEMO_LOCATIONS for kind in ("for_sale", "for_rent")]

        def demo_job(browser: bool, **more: Any) -> Callable[[int], dict[str, Any]]:
            def job(index: int) -> dict[str, Any]:
                slug, kind = locations[index % len(locations)]
                params = {**listing_params(demo.url, slug, kind), **more}
                if browser:  # an `http` param the browser's model refuses
                    del params["request_timeout_seconds"]
                return params

            return job

        def js_job(index: int) -> dict[str, Any]:
            return {
                "urls": [f"{site.url}/js/1"],
                "item_selector": "li.item",
                "fields": {"id": "@data-id", "title": ".title"},
                "key_field": "id",
                "next_page_selector": "a.next",
                "network_idle_seconds": 0,
                "wait_for_selector": "li.item",
            }

        def demo_pages() -> int:
            return sum(target != "/robots.txt" for target in demo.requested)

        def js_pages() -> int:
            return sum(path.startswith("/js/") for path in site.paths())

        polite = Politeness(
            LocalHosts(), PoliteSettings(max_in_flight=options.concurrency), SystemClock()
        )
        browser = BrowserScraper(chromium)
        await _scrape(browser, js_job(0), polite)  # launch Chromium outside the measurement
        runs: list[tuple[str, Scraper, Callable[[int], dict[str, Any]], Callable[[], int]]] = [
            ("http, static listings", HttpScraper(), demo_job(False), demo_pages),
            (
                "browser, static, no idle wait",
                browser,
                demo_job(True, network_idle_seconds=0),
                demo_pages,
            ),
            ("browser, static, idle wait (default)", browser, demo_job(True), demo_pages),
            ("browser, JS-rendered, wait for items", browser, js_job, js_pages),
        ]
        print(f"pages per second, {options.concurrency} jobs at once, {options.seconds:g} s each")
        for name, scraper, jobs, served in runs:
            result = await throughput(
                name, scraper, jobs, served, options.seconds, options.concurrency, polite
            )
            print(result.line())

        print("\nmemory of this process and its descendants (Chromium, Playwright's driver)")
        rss, pss, processes = memory_mb(os.getpid())
        print(
            f"{'browser launched, no job page':<34} RSS {rss:7.0f} MiB  PSS {pss:7.0f} MiB"
            f"  ({processes} processes)"
        )
        for count in (int(n) for n in options.pages.split(",")):
            close = await open_pages(chromium, f"{site.url}/js/1", count)
            rss, pss, processes = memory_mb(os.getpid())
            print(
                f"{f'{count} browser pages open':<34} RSS {rss:7.0f} MiB  PSS {pss:7.0f} MiB"
                f"  ({processes} processes)"
            )
            await close()
    finally:
        await chromium.close()
        await site.stop()
        await demo.stop()


if __name__ == "__main__":
    asyncio.run(main())
