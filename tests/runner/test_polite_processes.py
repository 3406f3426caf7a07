"""Runner processes, as deployed, against a site of the test's own: two runners keep
one host within its rate and concurrency limits together, and a crawl whose runner is
SIGKILLed mid-page resumes on another runner without fetching any page twice."""

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from nats.aio.client import Client

from natscron_shared.contract.enums import JobStatus
from natscron_shared.nats.jetstream_layout import RUNNER_ACK_WAIT_SECONDS
from tests.processes import Fleet, ServiceProcess
from tests.runner.sites import Site, graph_route, serving
from tests.runner.test_runner_service import Observer, observer, run_request, submit
from tests.servers import Server
from tests.waiting import eventually

__all__ = ["observer"]

pytestmark = pytest.mark.integration

UNUSED_MONGO_URL = "mongodb://127.0.0.1:9/unused"
"""Runners never talk to MongoDB; a service process still needs both URLs set."""
ARRIVAL_JITTER_SECONDS = 0.1
"""Between a request's start, as the limiter spaced it, and its arrival at the site."""


@contextlib.asynccontextmanager
async def runners(
    nats_server: Server, tmp_path: Path, count: int, **env: str
) -> AsyncIterator[list[ServiceProcess]]:
    fleet = Fleet(
        log_dir=tmp_path,
        base_env={
            "NATSCRON_NATS_URL": nats_server.url,
            "NATSCRON_MONGO_URL": UNUSED_MONGO_URL,
            "NATSCRON_SHUTDOWN_GRACE_SECONDS": "2",
            **env,
        },
    )
    processes = [
        fleet.service(f"runner-{n}", "runner", NATSCRON_RUNNER_ID=f"runner-{n}")
        for n in range(1, count + 1)
    ]
    try:
        yield processes
    except BaseException:
        print(fleet.log_tails())
        raise
    finally:
        await fleet.kill_all()
    assert fleet.survivors() == []


async def started(process: ServiceProcess) -> ServiceProcess:
    await process.start()
    await process.wait_ready()
    return process


def crawl_params(site: Site, section: str, **extra: object) -> dict[str, object]:
    return {"urls": [f"{site.url}/{section}/"], "max_depth": 1, **extra}


@pytest.mark.timeout(120)
async def test_two_runners_keep_a_host_to_two_requests_a_second_and_two_in_flight(
    nats_server: Server, nc: Client, observer: Observer, tmp_path: Path
) -> None:
    """Four crawls of one host, two on each runner, the schedule limiting it to 2
    requests/s; pages take 1.2 s, so at that rate a third request would start while two
    are in flight if the runners did not share the host's two slots."""
    sections = ["a", "b", "c", "d"]
    graph = {f"/{s}/": [f"/{s}/{n}" for n in range(3)] for s in sections} | {
        f"/{s}/{n}": [] for s in sections for n in range(3)
    }
    async with (
        serving(graph_route(graph, robots="User-agent: *\nAllow: /\n", delay=1.2)) as site,
        runners(nats_server, tmp_path, 2, NATSCRON_RUNNER_CONCURRENCY="2") as processes,
    ):
        for process in processes:
            await started(process)
        jobs = [
            await submit(
                nc,
                run_request(
                    "crawl",
                    params=crawl_params(site, section, max_requests_per_second=2),
                    timeout_seconds=90,
                ),
            )
            for section in sections
        ]
        await observer.until_finished(*jobs, within=90)
    finals = [observer.of(job)[-1] for job in jobs]
    assert all(final.status is JobStatus.COMPLETED for final in finals), finals
    assert {final.runner_id for final in finals} == {"runner-1", "runner-2"}
    pages = [hit for hit in site.hits if hit.target != "/robots.txt"]
    assert len(pages) == 16 and max(site.counts().values()) <= 2
    assert max(hit.in_flight for hit in site.hits) == 2, "two in flight, never more"
    arrivals = [hit.at for hit in pages]
    per_two = [later - earlier for earlier, later in zip(arrivals, arrivals[2:], strict=False)]
    assert min(per_two) >= 1.0 - ARRIVAL_JITTER_SECONDS, f"3 requests within a second: {per_two}"


@pytest.mark.timeout(RUNNER_ACK_WAIT_SECONDS + 90)
async def test_a_crawl_resumes_on_another_runner_after_a_sigkill_fetching_no_page_twice(
    nats_server: Server, nc: Client, observer: Observer, tmp_path: Path
) -> None:
    """The killed runner's job comes back after the JOBS ack wait (10 s), to the other
    runner, as the same attempt: it loads the checkpoint and carries on."""
    pages = [f"/p{n:02d}" for n in range(16)]
    graph = {"/": pages} | {page: ["/", *pages[:3]] for page in pages}
    async with (
        serving(graph_route(graph, delay=0.25)) as site,
        runners(nats_server, tmp_path, 2) as (doomed, survivor),
    ):
        await started(doomed)
        job = await submit(
            nc, run_request("crawl", params={"urls": [site.url + "/"]}, timeout_seconds=300)
        )

        async def fetched() -> int:
            doomed.ensure_alive()
            return len(site.pages())

        await eventually(fetched, lambda n: n >= 6, what="the crawl well under way")
        await doomed.kill()
        killed_at = len(site.pages())
        await started(survivor)
        await observer.until_finished(job, within=RUNNER_ACK_WAIT_SECONDS + 60)
    final = observer.of(job)[-1]
    assert final.status is JobStatus.COMPLETED, final.error_message
    assert final.runner_id == "runner-2" and final.attempt == 1, "a death is no attempt"
    counts = site.counts()
    del counts["/robots.txt"]  # each runner reads it once: it is no page
    assert max(counts.values()) == 1, f"a page fetched twice: {counts}"
    assert 6 <= killed_at < len(counts), "killed mid-crawl, finished by the survivor"
    interrupted = (final.skipped_pages or {}).get("interrupted", 0)
    assert interrupted <= 1 and len(counts) >= 17 - interrupted
    keys = [item.key for batch in observer.batches for item in batch.items]
    assert len(keys) == len(set(keys)), "no item stored twice"
    assert len(keys) >= len(counts) - 1, "at most the page in flight is lost"
    assert final.properties_scraped is not None and final.properties_scraped <= len(keys)
    numbers = sorted(batch.batch for batch in observer.batches)
    assert len(numbers) == len(set(numbers)), "no batch number reused"
