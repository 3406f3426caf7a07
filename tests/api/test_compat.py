"""The seeds' frontends against natscron's API: one test per row of docs/compatibility.md,
calling the path the seed documents and checking the fields it documents, on real servers.
And CORS, which a browser frontend on another origin needs first."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from nats.aio.client import Client
from pymongo.asynchronous.database import AsyncDatabase

from natscron_api import ApiService, bulk_cancel
from natscron_shared.contract import names
from natscron_shared.contract.claims import JobClaim
from natscron_shared.contract.enums import JobStatus, ScheduledJobStatus, Trigger
from natscron_shared.contract.storage import Document
from natscron_shared.nats.schedule_bucket import put_schedules
from natscron_shared.runtime.endpoints import Endpoints
from natscron_shared.runtime.settings import Settings
from tests.api.api_support import (
    api_settings,
    client,
    error_of,
    finished_event,
    running_api,
    spec,
    store_runs,
    store_schedule,
)
from tests.conftest import StartTicker
from tests.stack import running_stack
from tests.waiting import eventually

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)
FRONTEND = "https://app.example.com"


# --- CORS --------------------------------------------------------------------------------------


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("access-control-")}


async def test_cors_preflight_from_an_allowed_and_a_refused_origin(
    settings: Settings, endpoints: Endpoints
) -> None:
    preflight = {
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    }
    allowed = api_settings(settings, api_cors_origins=f"{FRONTEND}, http://localhost:3000")
    async with running_api(allowed, endpoints) as api, client(api) as http:
        answer = await http.options("/scheduled-jobs", headers={"Origin": FRONTEND, **preflight})
        assert answer.status_code == 200
        headers = cors_headers(answer)
        assert headers["access-control-allow-origin"] == FRONTEND
        assert "GET" in headers["access-control-allow-methods"]
        assert "authorization" in headers["access-control-allow-headers"].lower()

        refused = await http.options(
            "/scheduled-jobs", headers={"Origin": "https://evil.example", **preflight}
        )
        assert error_of(refused) == (403, "origin_not_allowed")
        assert cors_headers(refused) == {}

        listed = await http.get("/scheduled-jobs", headers={"Origin": FRONTEND})
        assert listed.status_code == 200
        assert listed.headers["access-control-allow-origin"] == FRONTEND
        async with client(api, token=None) as anonymous:  # an error carries them too
            unauthorized = await anonymous.get("/scheduled-jobs", headers={"Origin": FRONTEND})
        assert unauthorized.status_code == 401
        assert unauthorized.headers["access-control-allow-origin"] == FRONTEND
        elsewhere = await http.get("/scheduled-jobs", headers={"Origin": "https://evil.example"})
        assert elsewhere.status_code == 200 and cors_headers(elsewhere) == {}

    async with running_api(api_settings(settings), endpoints) as api, client(api) as http:
        closed = await http.options("/scheduled-jobs", headers={"Origin": FRONTEND, **preflight})
        assert closed.status_code == 405 and cors_headers(closed) == {}


def test_a_cors_origin_with_a_path_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="not an origin"):
        Settings(api_cors_origins="https://app.example.com/")
    assert Settings(api_cors_origins="*").api_cors_origin_list == ["*"]


# --- seed 000 and seed 001: scheduled jobs, their runs, triggers --------------------------------

INDY_PARAMS = {"locations": ["Indianapolis, IN"], "listing_type": "sold", "limit": 10000}


async def seed001_history(db: AsyncDatabase[Document]) -> None:
    indy = spec(
        "sold_daily_indy",
        name="Daily Sold Properties - Indianapolis",
        description="Daily scraping of sold properties",
        params=INDY_PARAMS,
        labels={"team": "sold"},
    )
    last_run = datetime(2025, 1, 13, 2, 0, tzinfo=UTC)
    await store_schedule(
        db,
        indy,
        NOW,
        run_count=15,
        last_run_at=last_run,
        last_run_status="completed",
        last_run_job_id="scheduled_sold_daily_indy_1736830800_def456",
        next_run_at=datetime(2025, 1, 14, 2, 0, tzinfo=UTC),
    )
    await store_schedule(db, spec("paused-one", status=ScheduledJobStatus.PAUSED), NOW)
    triggered = finished_event(
        indy,
        "triggered_sold_daily_indy_1736841234_abc123",
        datetime(2025, 1, 13, 15, 30, tzinfo=UTC),
        trigger=Trigger.TRIGGERED,
        scraped=120,
    )
    scheduled = finished_event(
        indy, "scheduled_sold_daily_indy_1736830800_def456", last_run, scraped=115
    )
    await store_runs(db, [scheduled, triggered], saved=95)


async def test_seed000_documents_show_their_fields(
    http: httpx.AsyncClient, mongo_db: AsyncDatabase[Document]
) -> None:
    await seed001_history(mongo_db)
    job = (await http.get("/scheduled-jobs/sold_daily_indy")).json()["scheduled_job"]
    assert job["scheduled_job_id"] == "sold_daily_indy"
    assert job["description"] == "Daily scraping of sold properties"
    assert job["status"] == "active"
    assert job["cron_expression"] == "0 2 * * *"
    assert job["locations"] == ["Indianapolis, IN"]
    assert job["listing_type"] == "sold"
    assert job["limit"] == 10000
    assert job["params"] == INDY_PARAMS  # stored once, in params
    assert (job["run_count"], job["last_run_status"]) == (15, "completed")
    assert job["last_run_at"] == "2025-01-13T02:00:00Z"
    assert job["next_run_at"] == "2025-01-14T02:00:00Z"
    stored = await mongo_db.scheduled_jobs.find_one({"scheduled_job_id": "sold_daily_indy"})
    assert stored is not None and "locations" not in stored

    run = (await http.get("/api/v1/executions/triggered_sold_daily_indy_1736841234_abc123")).json()
    assert run["scheduled_job_id"] == "sold_daily_indy"
    assert (run["status"], run["properties_scraped"]) == ("completed", 120)
    assert run["created_at"] == "2025-01-13T15:30:00Z"
    other = (await http.get("/scheduled-jobs/paused-one")).json()["scheduled_job"]
    assert (other["locations"], other["listing_type"], other["limit"]) == (None, None, None)


async def test_seed001_list_scheduled_jobs(
    http: httpx.AsyncClient, mongo_db: AsyncDatabase[Document]
) -> None:
    await seed001_history(mongo_db)
    listed = await http.get("/scheduled-jobs", params={"status": "active", "limit": 50})
    assert listed.status_code == 200
    body = listed.json()
    assert body["total"] == 1
    (job,) = body["scheduled_jobs"]
    assert {
        key: job[key]
        for key in (
            "scheduled_job_id",
            "name",
            "status",
            "cron_expression",
            "locations",
            "listing_type",
            "run_count",
            "last_run_at",
            "last_run_status",
            "next_run_at",
        )
    } == {
        "scheduled_job_id": "sold_daily_indy",
        "name": "Daily Sold Properties - Indianapolis",
        "status": "active",
        "cron_expression": "0 2 * * *",
        "locations": ["Indianapolis, IN"],
        "listing_type": "sold",
        "run_count": 15,
        "last_run_at": "2025-01-13T02:00:00Z",
        "last_run_status": "completed",
        "next_run_at": "2025-01-14T02:00:00Z",
    }
    everything = (await http.get("/scheduled-jobs")).json()
    assert [j["scheduled_job_id"] for j in everything["scheduled_jobs"]] == [
        "paused-one",
        "sold_daily_indy",
    ]
    paused = (await http.get("/scheduled-jobs", params={"status": "paused"})).json()
    assert [j["scheduled_job_id"] for j in paused["scheduled_jobs"]] == ["paused-one"]
    by_label = (await http.get("/scheduled-jobs", params={"selector": "team=sold"})).json()
    assert [j["scheduled_job_id"] for j in by_label["scheduled_jobs"]] == ["sold_daily_indy"]
    assert "_id" not in job

    assert error_of(await http.get("/scheduled-jobs?limit=-1")) == (422, "invalid_request")
    assert error_of(await http.get("/scheduled-jobs?status=sleeping")) == (422, "invalid_request")
    assert error_of(await http.get("/scheduled-jobs?selector=a.b=c")) == (422, "invalid_request")
    assert error_of(await http.get("/scheduled-jobs/a.b")) == (422, "invalid_request")
    assert error_of(await http.get("/no/such/route")) == (404, "not_found")
    assert error_of(await http.delete("/scrape/trigger")) == (405, "method_not_allowed")


async def test_seed001_scheduled_job_and_its_runs(
    http: httpx.AsyncClient, mongo_db: AsyncDatabase[Document]
) -> None:
    await seed001_history(mongo_db)
    detail = await http.get("/scheduled-jobs/sold_daily_indy")
    assert detail.status_code == 200
    shown = detail.json()
    assert set(shown) >= {"scheduled_job", "job_runs", "total_runs"}
    assert shown["scheduled_job"]["last_run_job_id"] == (
        "scheduled_sold_daily_indy_1736830800_def456"
    )
    assert shown["total_runs"] == 2
    newest, older = shown["job_runs"]
    assert {
        key: newest[key]
        for key in (
            "job_id",
            "scheduled_job_id",
            "status",
            "priority",
            "locations",
            "listing_type",
            "created_at",
            "started_at",
            "completed_at",
            "properties_scraped",
            "properties_saved",
        )
    } == {
        "job_id": "triggered_sold_daily_indy_1736841234_abc123",
        "scheduled_job_id": "sold_daily_indy",
        "status": "completed",
        "priority": "immediate",
        "locations": ["Indianapolis, IN"],
        "listing_type": "sold",
        "created_at": "2025-01-13T15:30:00Z",
        "started_at": "2025-01-13T15:30:01Z",
        "completed_at": "2025-01-13T15:30:02.500000Z",
        "properties_scraped": 120,
        "properties_saved": 95,
    }
    assert (older["job_id"], older["priority"]) == (
        "scheduled_sold_daily_indy_1736830800_def456",
        "normal",
    )
    assert "_id" not in newest and "progress" not in newest

    no_runs = (await http.get("/scheduled-jobs/sold_daily_indy?include_runs=false")).json()
    assert no_runs["job_runs"] == [] and no_runs["total_runs"] == 2
    one_run = (await http.get("/scheduled-jobs/sold_daily_indy?limit=1")).json()
    assert [run["job_id"] for run in one_run["job_runs"]] == [newest["job_id"]]
    assert error_of(await http.get("/scheduled-jobs/nope")) == (404, "unknown_scheduled_job")


async def test_seed001_trigger_goes_through_a_ticker(
    http: httpx.AsyncClient, nc: Client, start_ticker: StartTicker
) -> None:
    early = await http.post("/scrape/trigger", json={"job_id": "x"})
    assert error_of(early) == (503, "unavailable")  # no ticker yet: no responders
    await start_ticker()
    await put_schedules(nc.jetstream(), [spec("sold_daily_indy", name="Daily Sold - Indy")])

    answer = await http.post(
        "/scrape/trigger", json={"job_id": "sold_daily_indy", "priority": "immediate"}
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"job_id", "status", "message", "created_at"}
    assert body["job_id"].startswith("triggered_sold_daily_indy_")
    assert body["status"] == "pending"
    assert body["message"] == "Triggered scheduled job 'Daily Sold - Indy' to run immediately"
    assert datetime.fromisoformat(body["created_at"]) <= datetime.now(UTC)

    unknown = await http.post("/scrape/trigger", json={"job_id": "nope"})
    assert error_of(unknown) == (404, "unknown_scheduled_job")
    malformed = await http.post(
        "/scrape/trigger", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert error_of(malformed) == (400, "malformed_json")
    extra = await http.post("/scrape/trigger", json={"job_id": "sold_daily_indy", "x": 1})
    assert error_of(extra) == (422, "invalid_request")
    neither = await http.post("/scrape/trigger", json={"priority": "normal"})
    assert error_of(neither) == (422, "invalid_request")
    no_runner = await http.post("/scrape/trigger", json={"scraper": "noop"})
    assert error_of(no_runner) == (409, "no_runners")


# --- seed 002: the daemon's status ---------------------------------------------------------------


async def test_seed002_daemon_status_from_the_leading_ticker(
    http: httpx.AsyncClient, nc: Client, start_ticker: StartTicker
) -> None:
    path = "/api/scraping-schedules/status/daemon"
    idle = (await http.get(path)).json()
    assert (idle["running"], idle["last_check"], idle["schedules_checked"]) == (False, None, 0)
    assert idle["tasks_executed"] == 0

    await put_schedules(
        nc.jetstream(), [spec("every-second", cron_expression="* * * * * *"), spec("nightly")]
    )
    await start_ticker(ticker_id="ticker-one")

    async def status() -> Any:
        return (await http.get(path)).json()

    shown = await eventually(
        status, lambda s: s["running"] and s["tasks_executed"] >= 2, what="slots fired"
    )
    assert set(shown) >= {"running", "last_check", "schedules_checked", "tasks_executed"}
    assert shown["schedules_checked"] == 2
    assert shown["leader"] == "ticker-one"
    checked = datetime.fromisoformat(shown["last_check"])
    assert datetime.now(UTC) - timedelta(seconds=10) < checked <= datetime.now(UTC)


# --- seed 004: the crawler's API -----------------------------------------------------------------


async def test_seed004_health_is_open(api: ApiService) -> None:
    async with client(api, token=None) as anonymous:
        answer = await anonymous.get("/health")
    assert (answer.status_code, answer.json()) == (200, {"status": "ok"})


async def claim(nc: Client, job_id: str, scheduled_job_id: str) -> None:
    """What a runner keeps in KV `running` while it runs the job."""
    bucket = await nc.jetstream().key_value(names.KV_RUNNING)
    held = JobClaim(
        job_id=job_id,
        scheduled_job_id=scheduled_job_id,
        runner_id="runner-1",
        attempt=1,
        started_at=NOW,
    )
    await bucket.put(names.running_job_key(job_id), held.model_dump_json().encode())


async def test_seed004_list_jobs_with_states_filter_and_pages(
    http: httpx.AsyncClient, nc: Client, mongo_db: AsyncDatabase[Document]
) -> None:
    await store_schedule(mongo_db, spec("a-cron"), NOW)
    await store_schedule(
        mongo_db, spec("b-interval", cron_expression=None, interval={"hours": 6}), NOW
    )
    await store_schedule(mongo_db, spec("c-paused", status=ScheduledJobStatus.PAUSED), NOW)
    await store_schedule(mongo_db, spec("d-gone", status=ScheduledJobStatus.INACTIVE), NOW)
    await claim(nc, "scheduled_a-cron_1", "a-cron")

    listed = await http.get("/api/v1/jobs")
    assert listed.status_code == 200
    body = listed.json()
    assert (body["total"], body["limit"], body["offset"]) == (4, 50, 0)
    states = {job["id"]: job["status"] for job in body["jobs"]}
    assert states == {
        "a-cron": "running",
        "b-interval": "scheduled",
        "c-paused": "paused",
        "d-gone": "cancelled",
    }
    running = [job["id"] for job in body["jobs"] if job["status"] == "running"]  # seed 004's jq
    assert running == ["a-cron"]
    by_id = {job["id"]: job for job in body["jobs"]}
    assert by_id["b-interval"]["interval_minutes"] == 360
    assert by_id["c-paused"]["is_paused"] is True
    assert by_id["c-paused"]["schedule_status"] == "paused"
    assert by_id["a-cron"]["max_retries"] == 0 and by_id["a-cron"]["scheduled_job_id"] == "a-cron"

    async def ids(**params: Any) -> list[str]:
        page = (await http.get("/api/v1/jobs", params=params)).json()
        return [job["id"] for job in page["jobs"]]

    assert await ids(status="running") == ["a-cron"]
    assert await ids(status="scheduled") == ["b-interval"]
    assert await ids(status="cancelled") == ["d-gone"]
    assert await ids(status="completed") == []
    assert await ids(limit=2, offset=1) == ["b-interval", "c-paused"]
    assert error_of(await http.get("/api/v1/jobs?status=sleeping")) == (422, "invalid_request")


async def test_seed004_pause_and_resume_a_job(http: httpx.AsyncClient, nc: Client) -> None:
    await put_schedules(nc.jetstream(), [spec("crawl-1")])
    paused = await http.post("/api/v1/jobs/crawl-1/pause")
    assert paused.json() == {
        "scheduled_job_id": "crawl-1",
        "outcome": "paused",
        "message": "paused",
    }
    resumed = await http.post("/api/v1/jobs/crawl-1/resume")
    assert resumed.json()["outcome"] == "resumed"
    assert error_of(await http.post("/api/v1/jobs/crawl-1/resume")) == (409, "invalid_state")


async def test_seed004_executions_stats_and_metrics_by_its_names(
    http: httpx.AsyncClient, mongo_db: AsyncDatabase[Document]
) -> None:
    job = spec("crawl")
    await store_schedule(mongo_db, job, NOW)
    base = NOW - timedelta(minutes=30)
    events = [
        finished_event(job, f"crawl-{i}", base + timedelta(minutes=i), duration_ms=1000 * (i + 1))
        for i in range(4)
    ]
    events.append(finished_event(job, "crawl-4", base + timedelta(minutes=4), JobStatus.FAILED))
    await store_runs(mongo_db, events)

    page = await http.get("/api/v1/jobs/crawl/executions", params={"limit": 2, "offset": 1})
    assert page.status_code == 200
    body = page.json()
    assert (body["total"], body["limit"], body["offset"]) == (5, 2, 1)
    assert [e["job_id"] for e in body["executions"]] == ["crawl-3", "crawl-2"]
    after_cursor = await http.get("/api/v1/jobs/crawl/executions", params={"limit": 1, "offset": 1})
    cursor = (await http.get("/api/v1/jobs/crawl/executions?limit=1")).json()["next_cursor"]
    skipped = await http.get(
        "/api/v1/jobs/crawl/executions", params={"limit": 1, "offset": 1, "cursor": cursor}
    )
    assert [e["job_id"] for e in after_cursor.json()["executions"]] == ["crawl-3"]
    assert [e["job_id"] for e in skipped.json()["executions"]] == ["crawl-2"]

    one = (await http.get("/api/v1/executions/crawl-1")).json()
    assert (one["job_id"], one["scheduled_job_id"], one["status"]) == (
        "crawl-1",
        "crawl",
        "completed",
    )
    assert one["duration_ms"] == 2000 and one["started_at"] and one["completed_at"]

    stats = (await http.get("/api/v1/jobs/crawl/stats")).json()
    assert stats["total_executions"] == 5
    assert (stats["successful_runs"], stats["failed_runs"]) == (4, 1)
    assert stats["success_rate"] == 0.8
    assert stats["average_duration_ms"] == (1000 + 2000 + 3000 + 4000 + 1500) / 5
    assert stats["last_execution_at"] == iso_z(events[-1].started_at)

    metrics = (await http.get("/api/v1/scheduler/metrics")).json()
    assert metrics["executions"] == {
        "total": 5,
        "average_duration_ms": stats["average_duration_ms"],
        "success_rate": 0.8,
    }
    assert metrics["jobs"] == {"queued": 0, "running": 0}
    assert metrics["scheduled_jobs"]["active"] == 1


def iso_z(moment: datetime | None) -> str:
    assert moment is not None
    return moment.isoformat().replace("+00:00", "Z")


async def test_seed004_cancel_retry_and_bulk_cancel_on_the_real_services(
    settings: Settings,
    endpoints: Endpoints,
    http: httpx.AsyncClient,
    nc: Client,
    mongo_db: AsyncDatabase[Document],
) -> None:
    slow = {"delay_seconds": 60}
    specs = [
        spec("sold-a", params=slow, labels={"team": "sold"}, cron_expression="0 0 1 1 *"),
        spec("sold-b", params=slow, labels={"team": "sold"}, cron_expression="0 0 1 1 *"),
        spec("rent", params=slow, labels={"team": "rent"}, cron_expression="0 0 1 1 *"),
    ]
    await put_schedules(nc.jetstream(), specs)
    async with running_stack(settings, endpoints):  # one runner, 4 jobs at once
        started: dict[str, list[str]] = {}
        for target, times in (("sold-a", 3), ("sold-b", 2), ("rent", 2)):
            for _ in range(times):
                answer = await http.post("/scrape/trigger", json={"job_id": target})
                assert answer.status_code == 200, answer.text
                started.setdefault(target, []).append(answer.json()["job_id"])
        sold = sorted(started["sold-a"] + started["sold-b"])

        async def not_final() -> int:
            query = {"status": {"$in": ["pending", "running"]}}
            return await mongo_db.jobs.count_documents(query)

        await eventually(not_final, lambda count: count == 7, what="7 jobs recorded")
        await eventually(
            lambda: http.get("/api/v1/scheduler/metrics"),
            lambda r: r.json()["jobs"]["running"] == 4,
            what="4 running",
        )

        by_selector = await http.post(
            "/api/v1/jobs/cancel", json={"selector": "team=sold", "reason": "site down"}
        )
        assert by_selector.status_code == 200, by_selector.text
        body = by_selector.json()
        assert [r["job_id"] for r in body["results"]] == sold
        assert {r["outcome"] for r in body["results"]} <= {"running", "queued"}
        assert body["cancelled"] == 5

        async def statuses(job_ids: list[str]) -> set[str]:
            found = mongo_db.jobs.find({"job_id": {"$in": job_ids}}, {"status": 1})
            return {doc["status"] async for doc in found}

        await eventually(lambda: statuses(sold), lambda s: s == {"cancelled"}, what="cancelled")
        assert "cancelled" not in await statuses(started["rent"])

        over_nats = await nc.request(
            "natscron.api.jobs.bulk.cancel",
            json.dumps({"ids": [started["rent"][0], "never-seen"], "by": "ops"}).encode(),
            timeout=10,
        )
        reply = json.loads(over_nats.data)
        outcomes = {r["job_id"]: r["outcome"] for r in reply["results"]}
        assert outcomes["never-seen"] == "unknown"
        assert outcomes[started["rent"][0]] in ("running", "queued")
        assert reply["cancelled"] == 1

        single = await http.post(f"/api/v1/jobs/{started['rent'][1]}/cancel")
        assert single.status_code == 200 and single.json()["found"] in ("running", "queued")
        await eventually(
            lambda: statuses(started["rent"]), lambda s: s == {"cancelled"}, what="rent cancelled"
        )
        retried = await http.post(f"/api/v1/jobs/{started['rent'][1]}/retry")
        assert retried.status_code == 200 and retried.json()["job_id"].startswith("retry_")
        await http.post("/api/v1/jobs/cancel", json={"ids": [retried.json()["job_id"]]})
        none_left = await http.post("/api/v1/jobs/cancel", json={"selector": "team=nobody"})
        assert none_left.json() == {"results": [], "cancelled": 0}
        both = await http.post("/api/v1/jobs/cancel", json={"ids": ["x"], "selector": "a=b"})
        assert error_of(both) == (422, "invalid_request")
        bad = await http.post("/api/v1/jobs/cancel", json={"selector": "team"})
        assert error_of(bad) == (422, "invalid_request")


async def test_seed004_bulk_cancel_is_bounded(
    http: httpx.AsyncClient,
    nc: Client,
    mongo_db: AsyncDatabase[Document],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bulk_cancel, "MAX_BULK_CANCEL", 2)
    big = spec("big", labels={"team": "big"})
    await put_schedules(nc.jetstream(), [big])
    queued = [finished_event(big, f"big-{i}", NOW, JobStatus.PENDING) for i in range(3)]
    await store_runs(mongo_db, queued)

    refused = await http.post("/api/v1/jobs/cancel", json={"selector": "team=big"})
    assert error_of(refused) == (409, "too_many_jobs")
    assert "more than 2 jobs" in refused.json()["error"]["message"]
    too_many_ids = await http.post("/api/v1/jobs/cancel", json={"ids": ["a"] * 1001})
    assert error_of(too_many_ids) == (422, "invalid_request")
