"""Runner pools on real servers: a job goes only to the runners of its pool, whether the
schedule names the pool or gets the one its scraper is offered in; its retries stay there;
`apply` refuses a pool no runner of which is up, naming it."""

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from nats.aio.client import Client
from nats.aio.msg import Msg

from natscron.cli.apply import apply_file
from natscron.provisioning.provision import provision
from natscron.schedule_file import ScheduleFileError
from natscron_runner import RunnerService
from natscron_runner.scrapers.base import ScrapeContext
from natscron_runner.scrapers.registry import ScraperRegistry
from natscron_shared.contract import names
from natscron_shared.contract.enums import JobStatus
from natscron_shared.contract.messages import ScrapedItem
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.contract.pools import DEFAULT_POOL
from natscron_shared.nats.jetstream_layout import jetstream_layout
from natscron_shared.nats.kv_watch import current_values
from natscron_shared.runtime.settings import Settings
from tests.conftest import LEASE_TTL_SECONDS, StartRunner, StartTicker
from tests.runner.test_runner_service import Observer, sample
from tests.waiting import eventually

pytestmark = pytest.mark.integration

BROWSER = "browser"
EVERY_SECOND = "* * * * * *"


class RenderScraper:
    """Renders nothing: one item per run, and a note of each job it ran."""

    def __init__(self) -> None:
        self.ran: list[str] = []

    async def scrape(
        self, params: dict[str, Any], context: ScrapeContext
    ) -> AsyncIterator[ScrapedItem]:
        self.ran.append(context.job_id)
        yield ScrapedItem(key=context.job_id, data={})


@pytest.fixture
async def browser_pool(nc: Client) -> None:
    """The test server, provisioned with the browser pool as well."""
    await provision(nc.jetstream(), jetstream_layout(1, LEASE_TTL_SECONDS, pools=(BROWSER,)))


@pytest.fixture
async def observer(nc: Client) -> Observer:
    watching = Observer()
    await watching.start(nc.jetstream())
    return watching


def write_schedules(path: Path, *specs: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump({"scheduled_jobs": list(specs)}))
    return path


def spec(scheduled_job_id: str, scraper: str, **fields: Any) -> dict[str, Any]:
    return {
        "scheduled_job_id": scheduled_job_id,
        "name": scheduled_job_id,
        "cron_expression": EVERY_SECOND,
        "scraper": scraper,
        **fields,
    }


async def stored_pools(nc: Client) -> dict[str, str | None]:
    bucket = await nc.jetstream().key_value(names.KV_SCHEDULED_JOBS)
    return {
        key: ScheduledJob.model_validate_json(value).pool
        for key, value in (await current_values(bucket)).items()
    }


def runners_of(observer: Observer, scheduled_job_id: str) -> set[str | None]:
    return {
        event.runner_id
        for event in observer.events
        if event.job.scheduled_job_id == scheduled_job_id and event.status is JobStatus.COMPLETED
    }


def completed(observer: Observer, scheduled_job_id: str) -> int:
    return sum(
        1
        for event in observer.events
        if event.job.scheduled_job_id == scheduled_job_id and event.status is JobStatus.COMPLETED
    )


async def start_both(
    start_runner: StartRunner,
) -> tuple[RunnerService, RunnerService, RenderScraper]:
    """A default runner and a browser one; only the browser one has `render`, both `noop`."""
    render = RenderScraper()
    plain = await start_runner(runner_id="plain", scrapers=ScraperRegistry(load_plugins=False))
    browser = await start_runner(
        runner_id="chromium",
        runner_pool=BROWSER,
        scrapers=ScraperRegistry({"render": render}, load_plugins=False),
    )
    return plain, browser, render


@pytest.mark.usefixtures("browser_pool")
async def test_jobs_go_only_to_the_runners_of_their_pool(
    nc: Client,
    settings: Settings,
    tmp_path: Path,
    observer: Observer,
    start_runner: StartRunner,
    start_ticker: StartTicker,
) -> None:
    plain, browser, render = await start_both(start_runner)
    schedules = write_schedules(
        tmp_path / "schedules.yaml",
        spec("render", "render"),
        spec("noop-in-browser", "noop", pool=BROWSER),
        spec("noop", "noop"),
    )
    await apply_file(schedules, settings)
    assert await stored_pools(nc) == {
        "render": BROWSER,  # the only pool offering it
        "noop-in-browser": BROWSER,  # named
        "noop": DEFAULT_POOL,  # offered by both: the default pool
    }
    again = await apply_file(schedules, settings)
    assert {change.action.value for change in again.changes} == {"unchanged"}

    await start_ticker()
    reply = await nc.request(
        names.JOBS_TRIGGER, json.dumps({"scraper": "render"}).encode(), timeout=10
    )
    adhoc = json.loads(reply.data)
    assert adhoc["message"] == "Queued ad-hoc render job to run immediate in pool browser"

    async def counts() -> list[int]:
        return [completed(observer, job) for job in ("render", "noop-in-browser", "noop")]

    await eventually(counts, lambda done: min(done) >= 2, what="two runs of each schedule")
    await observer.until_finished(adhoc["job_id"])
    assert runners_of(observer, "render") == {browser.runner_id}
    assert runners_of(observer, "noop-in-browser") == {browser.runner_id}
    assert runners_of(observer, "noop") == {plain.runner_id}
    ran_adhoc = {event.runner_id for event in observer.of(adhoc["job_id"]) if event.runner_id}
    assert ran_adhoc == {browser.runner_id}
    assert adhoc["job_id"] in render.ran
    assert sample(plain, "natscron_runner_jobs_total", status="failed") == 0
    assert sample(browser, "natscron_runner_jobs_total", status="failed") == 0


@pytest.mark.usefixtures("browser_pool")
async def test_a_retry_stays_in_its_pool(
    nc: Client,
    settings: Settings,
    tmp_path: Path,
    observer: Observer,
    start_runner: StartRunner,
    start_ticker: StartTicker,
) -> None:
    plain, browser, _ = await start_both(start_runner)
    retries: list[str] = []

    async def on_retry(msg: Msg) -> None:
        retries.append(msg.subject)

    await nc.subscribe(f"{names.JOBS_RETRY_PREFIX}.>", cb=on_retry)
    flaky = spec(
        "flaky",
        "noop",
        pool=BROWSER,
        status="paused",
        params={"fail_attempts": 1},
        max_retries=2,
        retry_backoff_seconds=0,
    )
    await apply_file(write_schedules(tmp_path / "schedules.yaml", flaky), settings)
    await start_ticker()
    reply = await nc.request(
        names.JOBS_TRIGGER,
        json.dumps({"scheduled_job_id": "flaky", "force": True}).encode(),
        timeout=10,
    )
    job_id = json.loads(reply.data)["job_id"]
    await observer.until_finished(job_id)

    steps = [(event.status.value, event.attempt, event.runner_id) for event in observer.of(job_id)]
    assert ("failed", 2, browser.runner_id) not in steps
    assert [step for step in steps if step[0] in ("running", "completed")] == [
        ("running", 1, browser.runner_id),
        ("running", 2, browser.runner_id),
        ("completed", 2, browser.runner_id),
    ]
    assert retries == ["jobs.retry.browser.immediate"]
    assert sample(plain, "natscron_runner_jobs_total", status="completed") == 0


@pytest.mark.usefixtures("browser_pool")
async def test_apply_refuses_a_pool_no_runner_of_which_is_up_naming_it(
    nc: Client, settings: Settings, tmp_path: Path, start_runner: StartRunner
) -> None:
    await start_runner(runner_id="plain", scrapers=ScraperRegistry(load_plugins=False))
    in_browser = write_schedules(tmp_path / "browser.yaml", spec("b", "noop", pool=BROWSER))
    with pytest.raises(ScheduleFileError) as refused:
        await apply_file(in_browser, settings)
    assert str(refused.value).endswith(
        "scheduled_jobs[0].pool (scheduled job 'b'): no runner of pool 'browser' is up to run"
        " scraper 'noop' (pools up: default)"
    )
    nowhere = write_schedules(tmp_path / "render.yaml", spec("r", "render"))
    with pytest.raises(
        ScheduleFileError, match="unknown scraper 'render'; known: [a-z_, ]*http, noop"
    ):
        await apply_file(nowhere, settings)
    assert await stored_pools(nc) == {}

    # Unchecked it is written as it is, and keeps its pool when the file leaves it out.
    await apply_file(in_browser, settings, unchecked=True)
    pool_left_out = write_schedules(tmp_path / "again.yaml", spec("b", "noop"))
    plan = await apply_file(pool_left_out, settings, unchecked=True)
    assert [change.action.value for change in plan.changes] == ["unchanged"]
    assert await stored_pools(nc) == {"b": BROWSER}
