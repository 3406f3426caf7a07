"""The web console at scale, in Debian's Chromium driven by Playwright (tests/console/).

- `list`: N schedules in KV `scheduled_jobs` and their documents in MongoDB as the recorder
  leaves them (each with 20 `recent_runs`, a last run, an all-time `job_stats` document; one
  in ten paused), then `natscron api` starts. Reported: the API's first page
  (`GET /scheduled-jobs?limit=50&count=false`, as the console asks), a page deep in the list
  by cursor, a search and a status filter (median of `SAMPLES` calls each); and the
  console's first page rendered: a fresh tab opens `/ui/#/schedules` and the clock stops
  when its 50 rows are in the DOM (each of `SAMPLES` loads, the shell and modules included).
- `live`: a tab on `/ui/#/runs` while job events are published to `jobs.events.<job_id>`
  at `--rate` status changes per second (runs going pending, running, completed) for
  `--seconds`. Reported: the changes sent and the rows shown at the end, the batches the
  page received, and how responsive it stayed: the longest task (`PerformanceObserver`
  long tasks, those over 50 ms) and the longest gap between animation frames.

Run: `.venv/bin/python bench/console.py list --schedules 100000` and
`.venv/bin/python bench/console.py live --rate 200 --seconds 30`.
"""

import argparse
import asyncio
import itertools
import shutil
import statistics
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from nats.aio.client import Client
from playwright.async_api import Browser, async_playwright

from bench.failover import put_all
from bench.processes import Stack, provisioned_stack
from natscron.embedded import free_port
from natscron_api.cursor import encode_cursor
from natscron_runner.scrapers.chromium import CHROMIUM_ARGS
from natscron_shared.contract.enums import JobStatus, Priority, ScheduledJobStatus, Trigger
from natscron_shared.contract.job_stats import ALL_TIME, stats_id
from natscron_shared.contract.messages import JobEvent, run_request_for
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.contract.names import job_event_subject
from natscron_shared.contract.storage import SCHEDULED_JOBS, Document
from natscron_shared.nats.connection import to_json
from natscron_shared.runtime.mongo import database_of, ensure_indexes, new_client

SAMPLES = 5
PAGE = 50
INSERT_CHUNK = 5_000
RECENT = 20
READY_SECONDS = 300.0
RENDER_TIMEOUT_MS = 30_000


def spec_of(index: int) -> ScheduledJob:
    return ScheduledJob(
        scheduled_job_id=f"sched-{index:07d}",
        name=f"Listing {index} ({'Austin' if index % 2 else 'Denver'})",
        cron_expression=f"{index % 60} {index % 24} * * *",
        status=ScheduledJobStatus.PAUSED if index % 10 == 0 else ScheduledJobStatus.ACTIVE,
        scraper="noop",
        labels={"team": f"t{index % 16}"},
    )


def specs(count: int) -> Iterator[ScheduledJob]:
    return (spec_of(index) for index in range(count))


def documents(spec: ScheduledJob, now: datetime) -> tuple[Document, Document]:
    """The scheduled job's document as the recorder leaves it after 20 runs, and its
    all-time statistics."""
    runs = [
        {
            "job_id": f"scheduled_{spec.scheduled_job_id}_{n}",
            "status": "failed" if n % 7 == 3 else "completed",
            "completed_at": now - timedelta(days=n + 1),
            "duration_ms": 1000 + n,
        }
        for n in range(RECENT)
    ]
    document: Document = {
        **spec.model_dump(mode="json"),  # no moments in these specs: all JSON, as stored
        "kv_revision": 1,
        "created_at": now - timedelta(days=30),
        "updated_at": now,
        "run_count": RECENT,
        "consecutive_failures": 0,
        "last_run_at": runs[0]["completed_at"],
        "last_run_status": runs[0]["status"],
        "last_run_job_id": runs[0]["job_id"],
        "recent_runs": runs,
        "next_run_at": now + timedelta(hours=1),
    }
    failed = sum(1 for run in runs if run["status"] == "failed")
    stats: Document = {
        "_id": stats_id(spec.scheduled_job_id, ALL_TIME),
        "scope": spec.scheduled_job_id,
        "period": ALL_TIME,
        "runs": RECENT,
        "completed": RECENT - failed,
        "failed": failed,
        "duration_ms_sum": 1000 * RECENT,
        "duration_count": RECENT,
    }
    return document, stats


async def store_documents(stack: Stack, count: int, now: datetime) -> None:
    assert stack.mongo is not None
    client = new_client(stack.mongo.url)
    db = database_of(client)
    try:
        await ensure_indexes(db)
        iterator = specs(count)
        while chunk := list(itertools.islice(iterator, INSERT_CHUNK)):
            pairs = [documents(spec, now) for spec in chunk]
            await db.scheduled_jobs.insert_many([document for document, _ in pairs])
            await db.job_stats.insert_many([stats for _, stats in pairs])
    finally:
        await client.close()


async def start_api(stack: Stack) -> str:
    port = free_port()
    extra = {
        "NATSCRON_API_AUTH": "none",
        "NATSCRON_API_HOST": "127.0.0.1",
        "NATSCRON_API_PORT": str(port),
    }
    await stack.start_service("api", "api", extra, ready_within=READY_SECONDS)
    return f"http://127.0.0.1:{port}"


async def median_ms(http: httpx.AsyncClient, params: dict[str, Any]) -> tuple[float, int]:
    """Median milliseconds of `SAMPLES` calls of the listing, and the rows of the last."""
    took = []
    rows = 0
    for _ in range(SAMPLES):
        started = time.perf_counter()
        answer = await http.get("/scheduled-jobs", params=params)
        took.append((time.perf_counter() - started) * 1000)
        answer.raise_for_status()
        rows = len(answer.json()["scheduled_jobs"])
    return statistics.median(took), rows


def chromium() -> str:
    executable = shutil.which("chromium")
    if executable is None:
        raise SystemExit("Debian's chromium is needed (`make test-deps` installs it)")
    return executable


async def first_page_renders(browser: Browser, url: str) -> list[float]:
    """Milliseconds from opening `/ui/#/schedules` in a fresh tab to its rows in the DOM."""
    took = []
    for _ in range(SAMPLES):
        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        page = await context.new_page()
        started = time.perf_counter()
        await page.goto(f"{url}/ui/#/schedules")
        await page.wait_for_function(
            f"() => document.querySelectorAll('table.schedules tbody tr').length === {PAGE}",
            polling="raf",
            timeout=RENDER_TIMEOUT_MS,
        )
        took.append((time.perf_counter() - started) * 1000)
        await context.close()
    return took


async def bench_list(count: int) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    async with provisioned_stack() as (stack, _):
        started = time.monotonic()
        await put_all(stack, specs(count))
        await store_documents(stack, count, now)
        print(f"{count:,} schedules stored in {time.monotonic() - started:.0f} s", flush=True)
        url = await start_api(stack)
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            # The first listing waits for the API's directory of ids (a KV watch).
            started = time.monotonic()
            (
                await http.get("/scheduled-jobs", params={"limit": 1, "count": "false"})
            ).raise_for_status()
            print(f"API ready, directory loaded: {time.monotonic() - started:.1f} s", flush=True)
            deep = f"sched-{count * 9 // 10:07d}"
            cursor = encode_cursor(SCHEDULED_JOBS, [deep])
            calls: dict[str, dict[str, Any]] = {
                "first page": {"limit": PAGE, "count": "false"},
                "first page, counted": {"limit": PAGE},
                "page at 90%": {"limit": PAGE, "count": "false", "cursor": cursor},
                "status=paused": {"limit": PAGE, "count": "false", "status": "paused"},
                "search 'austin'": {"limit": PAGE, "count": "false", "search": "austin"},
                f"search '{deep}'": {"limit": PAGE, "count": "false", "search": deep},
                "selector team=t3": {"limit": PAGE, "count": "false", "selector": "team=t3"},
            }
            print(f"{'GET /scheduled-jobs':<28} {'median ms':>9} {'rows':>5}")
            for label, params in calls.items():
                ms, rows = await median_ms(http, params)
                print(f"{label:<28} {ms:>9.1f} {rows:>5}", flush=True)
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=chromium(), args=list(CHROMIUM_ARGS)
            )
            try:
                renders = await first_page_renders(browser, url)
            finally:
                await browser.close()
        shown = ", ".join(f"{ms:.0f}" for ms in renders)
        print(
            f"console first page rendered (ms): {shown}; median {statistics.median(renders):.0f},"
            f" max {max(renders):.0f}"
        )


RESPONSIVENESS = """
window.bench = {longTasks: [], frameGaps: [], batches: 0};
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) window.bench.longTasks.push(entry.duration);
}).observe({type: "longtask", buffered: true});
let last = performance.now();
function frame(now) {
  window.bench.frameGaps.push(now - last);
  last = now;
  requestAnimationFrame(frame);
}
requestAnimationFrame(frame);
"""
COUNT_BATCHES = """
const read = ReadableStreamDefaultReader.prototype.read;
ReadableStreamDefaultReader.prototype.read = async function () {
  const result = await read.call(this);
  if (typeof result.value === "string" && result.value.includes("event: runs")) {
    window.bench.batches += result.value.split("event: runs").length - 1;
  }
  return result;
};
"""


def event(job_id: str, spec: ScheduledJob, status: JobStatus, created: datetime) -> bytes:
    request = run_request_for(
        spec,
        job_id=job_id,
        trigger=Trigger.TRIGGERED,
        priority=Priority.IMMEDIATE,
        created_at=created,
        scheduled_for=None,
    )
    now = datetime.now(UTC)
    done = status is JobStatus.COMPLETED
    return to_json(
        JobEvent(
            job=request,
            status=status,
            at=now,
            runner_id="bench-runner" if status is not JobStatus.PENDING else None,
            started_at=created if status is not JobStatus.PENDING else None,
            completed_at=now if done else None,
            duration_ms=int((now - created).total_seconds() * 1000) if done else None,
            properties_scraped=5 if done else None,
        )
    )


async def publish_changes(nc: Client, rate: int, seconds: float) -> int:
    """`rate` status changes a second for `seconds`: each run pending, running, then
    completed, a run started every third change. Returns the changes sent."""
    js = nc.jetstream()
    specs_used = [spec_of(index) for index in range(20)]
    in_flight: list[tuple[str, ScheduledJob, datetime, JobStatus]] = []
    sent = 0
    started = time.monotonic()
    tick = 0.05
    while (elapsed := time.monotonic() - started) < seconds:
        due = int(elapsed * rate) - sent
        for _ in range(max(due, 0)):
            if sent % 3 == 0 or not in_flight:
                job_id = f"bench_{sent:08d}"
                created = datetime.now(UTC)
                spec = specs_used[sent % len(specs_used)]
                in_flight.append((job_id, spec, created, JobStatus.PENDING))
                message = event(job_id, spec, JobStatus.PENDING, created)
                await js.publish(job_event_subject(job_id), message)
            else:
                job_id, spec, created, status = in_flight.pop(0)
                following = (
                    JobStatus.RUNNING if status is JobStatus.PENDING else JobStatus.COMPLETED
                )
                if following is JobStatus.RUNNING:
                    in_flight.append((job_id, spec, created, following))
                await js.publish(job_event_subject(job_id), event(job_id, spec, following, created))
            sent += 1
        await asyncio.sleep(tick)
    return sent


async def bench_live(rate: int, seconds: float) -> None:
    async with provisioned_stack() as (stack, _):
        url = await start_api(stack)
        assert stack.nats is not None
        nc = Client()
        await nc.connect(stack.nats.url)
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=chromium(), args=list(CHROMIUM_ARGS)
            )
            try:
                context = await browser.new_context(viewport={"width": 1280, "height": 900})
                await context.add_init_script(RESPONSIVENESS + COUNT_BATCHES)
                page = await context.new_page()
                await page.goto(f"{url}/ui/#/runs")
                await page.get_by_text("Updates: live").wait_for()
                await page.evaluate("window.bench.longTasks = []; window.bench.frameGaps = []")
                sent = await publish_changes(nc, rate, seconds)
                await page.wait_for_timeout(1000)  # the last batch lands
                seen: dict[str, Any] = await page.evaluate(
                    """() => ({
                        longTasks: window.bench.longTasks,
                        frameGaps: window.bench.frameGaps,
                        batches: window.bench.batches,
                        rows: document.querySelectorAll('table.runs tbody tr').length,
                        completed: document.querySelectorAll(
                            'table.runs tbody tr[data-status="completed"]').length,
                    })"""
                )
            finally:
                await browser.close()
                await nc.close()
    gaps = sorted(seen["frameGaps"])
    tasks = seen["longTasks"]
    print(
        f"{sent} changes in {seconds:.0f} s ({sent / seconds:.0f}/s); {seen['batches']} batches"
        f" received; {seen['rows']} rows shown, {seen['completed']} completed"
    )
    print(
        f"frames: {len(gaps)}, gap median {statistics.median(gaps):.1f} ms,"
        f" p99 {gaps[int(len(gaps) * 0.99)]:.1f} ms, max {gaps[-1]:.1f} ms;"
        f" long tasks (> 50 ms): {len(tasks)}, longest {max(tasks, default=0):.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    which = parser.add_subparsers(dest="which", required=True)
    listing = which.add_parser("list", help="the schedule list at N schedules")
    listing.add_argument("--schedules", type=int, default=100_000)
    live = which.add_parser("live", help="the live run list under a rate of status changes")
    live.add_argument("--rate", type=int, default=200)
    live.add_argument("--seconds", type=float, default=30.0)
    arguments = parser.parse_args()
    if arguments.which == "list":
        asyncio.run(bench_list(arguments.schedules))
    else:
        asyncio.run(bench_live(arguments.rate, arguments.seconds))


if __name__ == "__main__":
    main()
