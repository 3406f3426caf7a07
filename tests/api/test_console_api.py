"""What the web console asks of the API: who the token is, the listing's search and windows,
the spec in KV, fire times in the schedule's zone, and runs' status changes as server-sent
events. On real servers, the API in-process (`tests/api/api_support.py`)."""

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from nats.aio.client import Client
from pymongo.asynchronous.database import AsyncDatabase

from natscron_api import ApiService
from natscron_api import queries as queries_module
from natscron_shared.contract import names
from natscron_shared.contract.enums import JobStatus, ScheduledJobStatus, Trigger
from natscron_shared.contract.storage import Document
from natscron_shared.nats.schedule_bucket import put_schedules
from natscron_shared.runtime.endpoints import Endpoints
from natscron_shared.runtime.settings import Settings
from tests.api.api_support import (
    READ_TOKEN,
    api_settings,
    client,
    error_of,
    finished_event,
    running_api,
    spec,
    store_runs,
    store_schedule,
)
from tests.stack import publish
from tests.waiting import eventually

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)


async def test_whoami_says_the_scopes_and_the_grafana_link(
    settings: Settings, endpoints: Endpoints
) -> None:
    configured = api_settings(settings, grafana_url="http://grafana.example:3000")
    async with running_api(configured, endpoints) as api:
        async with client(api, READ_TOKEN) as reader:
            me = (await reader.get("/api/v1/whoami")).json()
        async with client(api) as writer:
            writer_me = (await writer.get("/api/v1/whoami")).json()
        async with client(api, None) as anonymous:
            refused = await anonymous.get("/api/v1/whoami")
            console = await anonymous.get("/ui/")
            redirect = await anonymous.get("/ui")
    assert me == {
        "name": "static token 1",
        "scopes": ["read"],
        "auth": "bearer",
        "grafana_url": "http://grafana.example:3000",
    }
    assert writer_me["scopes"] == ["read", "write"]
    assert error_of(refused) == (401, "unauthorized")
    # The console's files are open (as /docs is), under a policy that runs only them.
    assert console.status_code == 200 and "natscron console" in console.text
    policy = console.headers["content-security-policy"]
    assert "script-src 'self' 'sha256-" in policy and "unsafe-inline" not in policy
    assert (redirect.status_code, redirect.headers["location"]) == (307, "/ui/")

    opened = api_settings(settings, api_auth="none", api_tokens=None, api_jwt_key=None)
    async with running_api(opened, endpoints) as api, client(api, None) as anyone:
        assert (await anyone.get("/api/v1/whoami")).json() == {
            "name": "anonymous",
            "scopes": ["read", "write"],
            "auth": "none",
            "grafana_url": None,
        }


async def listed(http: httpx.AsyncClient, **params: Any) -> list[str]:
    """Every id a listing yields, page after page."""
    ids: list[str] = []
    cursor = None
    while True:
        paging = {**params, **({"cursor": cursor} if cursor else {})}
        page = await http.get("/scheduled-jobs", params=paging)
        assert page.status_code == 200, page.text
        body = page.json()
        ids += [job["scheduled_job_id"] for job in body["scheduled_jobs"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return ids


async def test_listings_page_in_windows_search_ids_and_names_and_skip_counting(
    http: httpx.AsyncClient, nc: Client, mongo_db: AsyncDatabase[Document]
) -> None:
    jobs = [
        spec(
            f"job-{number:03d}",
            name=f"Listing {'Austin' if number % 10 == 0 else 'Denver'} {number}",
            labels={"team": "a" if number % 7 == 0 else "b"},
            status=ScheduledJobStatus.PAUSED if number % 5 == 0 else ScheduledJobStatus.ACTIVE,
        )
        for number in range(130)
    ]
    deleted = spec("zz-deleted", name="Gone Austin")
    await put_schedules(nc.jetstream(), [*jobs, deleted])
    for job in [*jobs, deleted]:
        await store_schedule(mongo_db, job, NOW)
    # Deleted from KV: the recorder keeps its document, inactive, and so do listings.
    await (await nc.jetstream().key_value(names.KV_SCHEDULED_JOBS)).delete("zz-deleted")
    await mongo_db.scheduled_jobs.update_one(
        {"scheduled_job_id": "zz-deleted"}, {"$set": {"status": "inactive"}}
    )
    await eventually(
        lambda: _found(http, "zz-deleted"), lambda found: found == ["zz-deleted"], what="directory"
    )

    everything = sorted([job.scheduled_job_id for job in jobs] + ["zz-deleted"])
    assert await listed(http, limit=17) == everything
    paused = [job.scheduled_job_id for job in jobs if job.status is ScheduledJobStatus.PAUSED]
    assert await listed(http, limit=4, status="paused") == paused
    assert await listed(http, limit=50, status="inactive") == ["zz-deleted"]
    team_a = [job.scheduled_job_id for job in jobs if job.labels["team"] == "a"]
    assert await listed(http, limit=5, selector="team=a") == team_a

    austin = [job.scheduled_job_id for job in [*jobs, deleted] if "Austin" in job.name]
    assert await listed(http, limit=4, search="aUsTiN", status="active") == [
        job.scheduled_job_id
        for job in jobs
        if "Austin" in job.name and job.status is ScheduledJobStatus.ACTIVE
    ]
    assert await listed(http, limit=50, search="JOB-12") == [f"job-{n}" for n in range(120, 130)]
    counted = (await http.get("/scheduled-jobs", params={"search": "austin"})).json()
    assert counted["total"] == len(austin) == len(counted["scheduled_jobs"]) == 14
    assert counted["scheduled_jobs"][-1]["status"] == "inactive"
    uncounted = (await http.get("/scheduled-jobs", params={"count": "false", "limit": 3})).json()
    assert uncounted["total"] is None and len(uncounted["scheduled_jobs"]) == 3

    first = (await http.get("/scheduled-jobs", params={"limit": 1})).json()["scheduled_jobs"][0]
    assert (first["success_rate"], first["recent_runs"]) == (None, [])
    error = await http.get("/scheduled-jobs", params={"search": ""})
    assert error_of(error) == (422, "invalid_request")


async def test_a_label_selector_reads_a_bounded_stretch_of_ids_per_page(
    http: httpx.AsyncClient,
    nc: Client,
    mongo_db: AsyncDatabase[Document],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    jobs = [
        spec(f"sel-{number:03d}", labels={"rare": "yes" if number in (3, 70) else "no"})
        for number in range(90)
    ]
    await put_schedules(nc.jetstream(), jobs)
    for job in jobs:
        await store_schedule(mongo_db, job, NOW)
    await eventually(
        lambda: _found(http, "sel-089"), lambda found: found == ["sel-089"], what="directory"
    )
    monkeypatch.setattr(queries_module, "SCAN_BUDGET", 20)
    pages = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"selector": "rare=yes", "limit": 10, "count": "false"}
        if cursor:
            params["cursor"] = cursor
        body = (await http.get("/scheduled-jobs", params=params)).json()
        pages.append([job["scheduled_job_id"] for job in body["scheduled_jobs"]])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert [job for page in pages for job in page] == ["sel-003", "sel-070"]
    assert len(pages) > 2, "each page read at most its budget of ids"


async def test_a_listing_shows_each_schedules_recent_runs_and_success_rate(
    http: httpx.AsyncClient, mongo_db: AsyncDatabase[Document]
) -> None:
    job = spec("with-runs")
    await store_schedule(mongo_db, job, NOW)
    events = [
        finished_event(job, f"run-{n}", NOW - timedelta(minutes=10 - n), status)
        for n, status in enumerate([JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.COMPLETED])
    ]
    await store_runs(mongo_db, events)
    recent = [
        {
            "job_id": event.job.job_id,
            "status": event.status.value,
            "completed_at": event.completed_at,
            "duration_ms": event.duration_ms,
        }
        for event in reversed(events)
    ]
    await mongo_db.scheduled_jobs.update_one(
        {"scheduled_job_id": "with-runs"}, {"$set": {"recent_runs": recent}}
    )
    (listed_job,) = (await http.get("/scheduled-jobs")).json()["scheduled_jobs"]
    assert listed_job["success_rate"] == pytest.approx(2 / 3)
    assert [run["status"] for run in listed_job["recent_runs"]] == [
        "completed",
        "failed",
        "completed",
    ]


async def test_the_spec_and_its_fire_times_in_its_zone_across_a_clock_change(
    http: httpx.AsyncClient, nc: Client
) -> None:
    noon = spec("ny-noon", cron_expression="0 12 * * *", timezone="America/New_York")
    await put_schedules(nc.jetstream(), [noon])
    current = await http.get("/scheduled-jobs/ny-noon/spec")
    assert current.status_code == 200, current.text
    assert current.json()["scheduled_job"]["timezone"] == "America/New_York"
    assert current.json()["revision"] >= 1
    assert error_of(await http.get("/scheduled-jobs/nope/spec")) == (404, "unknown_scheduled_job")

    # New York's clocks go forward on 2027-03-14.
    preview = await http.get(
        "/scheduled-jobs/ny-noon/preview", params={"count": 3, "after": "2027-03-12T00:00:00Z"}
    )
    fires = preview.json()["local_fire_times"]
    assert [(f["local"], f["utc_offset"], f["offset_changed"]) for f in fires] == [
        ("2027-03-12T12:00:00-05:00", "-05:00", False),
        ("2027-03-13T12:00:00-05:00", "-05:00", False),
        ("2027-03-14T12:00:00-04:00", "-04:00", True),
    ]
    assert [f["at"] for f in fires] == preview.json()["next_fire_times"]


class Events:
    """The server-sent events of one stream, parsed."""

    def __init__(self, response: httpx.Response) -> None:
        self._lines = response.aiter_lines()

    async def next(self) -> tuple[str, Any]:
        name, data = "message", None
        async for line in self._lines:
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
            elif line == "" and data is not None:
                return name, data
        raise AssertionError("the stream ended")


@pytest.fixture
async def reader(api: ApiService) -> AsyncIterator[httpx.AsyncClient]:
    async with client(api, READ_TOKEN) as session:
        yield session


async def test_runs_status_changes_stream_as_server_sent_events(
    api: ApiService, reader: httpx.AsyncClient, nc: Client
) -> None:
    job = spec("streamed")
    other = spec("elsewhere")
    js = nc.jetstream()
    async with reader.stream("GET", "/api/v1/events/runs") as everything:
        assert everything.headers["content-type"].startswith("text/event-stream")
        events = Events(everything)
        assert await events.next() == ("ready", {})
        running = finished_event(job, "streamed-1", NOW, JobStatus.RUNNING)
        done = finished_event(job, "streamed-1", NOW, JobStatus.COMPLETED)
        elsewhere = finished_event(other, "elsewhere-1", NOW, JobStatus.FAILED)
        for event in (running, done, elsewhere):
            await publish(js, names.job_event_subject(event.job.job_id), event, event.msg_id)
        seen: dict[str, dict[str, Any]] = {}
        while len(seen) < 2 or seen["streamed-1"]["status"] != "completed":
            name, changes = await events.next()
            assert name == "runs"
            seen.update({change["job_id"]: change for change in changes})
    assert seen["streamed-1"]["properties_scraped"] == 10
    assert (seen["elsewhere-1"]["status"], seen["elsewhere-1"]["error_message"]) == (
        "failed",
        "boom",
    )
    assert seen["streamed-1"]["trigger"] == Trigger.SCHEDULED.value

    async with reader.stream(
        "GET", "/api/v1/events/runs", params={"scheduled_job_id": "streamed"}
    ) as one_job:
        events = Events(one_job)
        assert (await events.next())[0] == "ready"
        again = finished_event(other, "elsewhere-2", NOW, JobStatus.COMPLETED)
        ours = finished_event(job, "streamed-2", NOW, JobStatus.COMPLETED)
        for event in (again, ours):
            await publish(js, names.job_event_subject(event.job.job_id), event, event.msg_id)
        name, changes = await events.next()
    assert (name, [change["job_id"] for change in changes]) == ("runs", ["streamed-2"])

    async with client(api, None) as anonymous:
        assert error_of(await anonymous.get("/api/v1/events/runs")) == (401, "unauthorized")


async def _found(http: httpx.AsyncClient, search: str) -> list[str]:
    """What a search finds: what the directory holds (and MongoDB has a document of)."""
    page = (await http.get("/scheduled-jobs", params={"search": search, "count": "false"})).json()
    return [job["scheduled_job_id"] for job in page["scheduled_jobs"]]
