"""The HTTP API on real servers: started in-process as a Service on a free port, called with
httpx over TCP. Data comes from KV, from the services (ticker, runner, recorder), or from
MongoDB documents written in the recorder's shapes (`tests/api/api_support.py`)."""

import asyncio
import re
import signal
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from nats.aio.client import Client
from pydantic import SecretStr
from pymongo.asynchronous.database import AsyncDatabase

from natscron.embedded import free_port
from natscron_api import ApiService
from natscron_api import service as service_module
from natscron_api.http_app import ROUTERS
from natscron_api.queries import Queries
from natscron_shared.contract import names
from natscron_shared.contract.catalogue import ScraperEntry
from natscron_shared.contract.enums import JobStatus, Priority, ScheduledJobStatus, Trigger
from natscron_shared.contract.job_stats import hour_period
from natscron_shared.contract.messages import RunRequest
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.contract.pools import DEFAULT_POOL
from natscron_shared.contract.storage import Document
from natscron_shared.contract.ticker_state import SlotState
from natscron_shared.nats.connection import to_json
from natscron_shared.nats.schedule_bucket import put_schedules
from natscron_shared.runtime.endpoints import Endpoints
from natscron_shared.runtime.settings import Settings
from tests.api.api_support import (
    READ_TOKEN,
    WRITE_TOKEN,
    api_settings,
    client,
    error_of,
    finished_event,
    hs256,
    running_api,
    spec,
    store_runs,
    store_schedule,
)
from tests.cli.test_cli import NATSCRON, run_cli, service_env
from tests.conftest import StartTicker
from tests.servers import Server
from tests.stack import publish, running_stack
from tests.waiting import eventually

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)


# --- the document, the open routes, and auth -------------------------------------------------


async def test_openapi_lists_every_route_and_the_open_routes_need_no_token(
    api: ApiService,
) -> None:
    async with client(api, token=None) as anonymous:
        document = (await anonymous.get("/openapi.json")).json()
        assert (await anonymous.get("/docs")).status_code == 200
        assert (await anonymous.get("/healthz")).text == "ok\n"
        assert (await anonymous.get("/readyz")).text == "ready\n"
        assert (await anonymous.get("/scheduled-jobs")).status_code == 401
        metrics = (await anonymous.get("/metrics")).text
    assert 'natscron_api_requests_total{method="GET",route="/healthz",status="200"}' in metrics

    routes = {
        (method.lower(), route.path)
        for router in ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    }
    documented = {
        (method, path) for path, operations in document["paths"].items() for method in operations
    }
    assert routes == documented
    tags = {
        tag
        for operations in document["paths"].values()
        for o in operations.values()
        for tag in o["tags"]
    }
    assert tags == {
        "scheduled jobs",
        "schedule specs",
        "runs",
        "scheduler",
        "console",
        "operations",
    }
    assert [tag["name"] for tag in document["tags"]] == [
        "scheduled jobs",
        "schedule specs",
        "runs",
        "scheduler",
        "console",
        "operations",
    ]
    assert {
        ("get", "/scheduled-jobs"),
        ("get", "/scheduled-jobs/{scheduled_job_id}"),
        ("post", "/scrape/trigger"),
        ("post", "/api/v1/jobs/{scheduled_job_id}/pause"),
        ("post", "/api/v1/jobs/{scheduled_job_id}/resume"),
        ("post", "/api/v1/jobs/{job_id}/cancel"),
        ("post", "/api/v1/jobs/{job_id}/retry"),
        ("get", "/api/v1/jobs/{scheduled_job_id}/executions"),
        ("get", "/api/v1/jobs/{scheduled_job_id}/stats"),
        ("get", "/api/v1/executions/{job_id}"),
        ("get", "/api/v1/scheduler/metrics"),
        ("get", "/api/v1/scheduler/status"),
        ("post", "/scheduled-jobs"),
        ("put", "/scheduled-jobs/{scheduled_job_id}"),
        ("delete", "/scheduled-jobs/{scheduled_job_id}"),
        ("post", "/scheduled-jobs/pause"),
        ("post", "/scheduled-jobs/resume"),
        ("post", "/scheduled-jobs/delete"),
        ("post", "/scheduled-jobs/{scheduled_job_id}/backfill"),
        ("get", "/scheduled-jobs/{scheduled_job_id}/preview"),
    } <= routes
    listing = document["paths"]["/scheduled-jobs"]["get"]
    assert listing["security"] == [{"bearer": []}]
    error_schema = listing["responses"]["401"]["content"]["application/json"]["schema"]
    assert error_schema == {"$ref": "#/components/schemas/ErrorResponse"}


async def test_docs_need_no_internet(api: ApiService) -> None:
    """Swagger UI's page names only files the API serves itself, so `/docs` works on an
    air-gapped cluster."""
    async with client(api, token=None) as anonymous:
        page = await anonymous.get("/docs")
        assert page.status_code == 200
        assert "//" not in page.text, page.text  # no scheme-relative or absolute URL
        linked = re.findall(r'(?:src=|href=|url: )["\']([^"\']+)', page.text)
        assert sorted(linked) == [
            "/docs/assets/favicon-32x32.png",
            "/docs/assets/swagger-ui-bundle.js?v=5.35.0",
            "/docs/assets/swagger-ui.css?v=5.35.0",
            "/openapi.json",
        ]
        for asset in linked:
            answer = await anonymous.get(asset)
            assert answer.status_code == 200 and answer.content, asset
        assert '"validatorUrl": null' in page.text
        licence = (await anonymous.get("/docs/assets/LICENSE")).text
        assert licence.lstrip().startswith("Apache License")


async def test_tokens_and_scopes(api: ApiService) -> None:
    write_path = "/api/v1/jobs/nope/pause"
    async with client(api, token=None) as anonymous:
        missing = await anonymous.get("/scheduled-jobs")
        assert error_of(missing) == (401, "unauthorized")
        assert missing.headers["www-authenticate"] == 'Bearer realm="natscron"'
        basic = await anonymous.get("/scheduled-jobs", headers={"Authorization": "Basic eDp5"})
        assert error_of(basic) == (401, "unauthorized")
    async with client(api, token="not-a-known-token-at-all") as stranger:
        unknown = await stranger.get("/scheduled-jobs")
        assert error_of(unknown) == (401, "unauthorized")
        assert 'error="invalid_token"' in unknown.headers["www-authenticate"]
    async with client(api, token=READ_TOKEN) as reader:
        assert (await reader.get("/scheduled-jobs")).status_code == 200
        forbidden = await reader.post(write_path)
        assert error_of(forbidden) == (403, "forbidden")
        assert 'scope="write"' in forbidden.headers["www-authenticate"]
    async with client(api, token=WRITE_TOKEN) as writer:
        assert (await writer.get("/scheduled-jobs")).status_code == 200  # write includes read
        assert error_of(await writer.post(write_path)) == (404, "unknown_scheduled_job")

    jwt_cases: list[tuple[str, int, int]] = [
        (hs256({"sub": "alice", "scope": "read"}), 200, 403),
        (hs256({"sub": "bob", "scope": "read write"}), 200, 404),
        (hs256({"scope": "admin"}), 403, 403),
        (hs256({"scope": "read", "exp": 1}), 401, 401),
        (hs256({"scope": "read"}, secret="x" * 40), 401, 401),
    ]
    for token, read_status, write_status in jwt_cases:
        async with client(api, token=token) as caller:
            assert (await caller.get("/scheduled-jobs")).status_code == read_status, token
            assert (await caller.post(write_path)).status_code == write_status, token


# --- seed 004: pause, resume, bulk --------------------------------------------------------


async def kv_spec(nc: Client, scheduled_job_id: str) -> ScheduledJob:
    bucket = await nc.jetstream().key_value(names.KV_SCHEDULED_JOBS)
    entry = await bucket.get(scheduled_job_id)
    return ScheduledJob.model_validate_json(entry.value or b"")


async def test_pause_resume_one_and_many(http: httpx.AsyncClient, nc: Client) -> None:
    await put_schedules(
        nc.jetstream(),
        [
            spec("a", labels={"team": "sold"}),
            spec("b", labels={"team": "sold"}),
            spec("c", labels={"team": "rent"}),
        ],
    )
    paused = await http.post("/api/v1/jobs/a/pause", json={"reason": "site is down"})
    assert paused.status_code == 200
    assert paused.json() == {"scheduled_job_id": "a", "outcome": "paused", "message": "paused"}
    stored = await kv_spec(nc, "a")
    assert stored.status is ScheduledJobStatus.PAUSED
    assert stored.paused_reason == "site is down"
    assert error_of(await http.post("/api/v1/jobs/a/pause")) == (409, "invalid_state")
    assert error_of(await http.post("/api/v1/jobs/nope/pause")) == (404, "unknown_scheduled_job")
    too_long = await http.post("/api/v1/jobs/b/pause", json={"reason": "x" * 501})
    assert error_of(too_long) == (422, "invalid_request")

    resumed = await http.post("/api/v1/jobs/a/resume")
    assert resumed.json()["outcome"] == "resumed"
    assert (await kv_spec(nc, "a")).status is ScheduledJobStatus.ACTIVE
    assert error_of(await http.post("/api/v1/jobs/a/resume")) == (409, "invalid_state")

    bulk = await http.post(
        "/scheduled-jobs/pause", json={"selector": "team=sold", "reason": "maintenance"}
    )
    assert bulk.status_code == 200
    assert bulk.json()["changed"] == 2
    assert [r["scheduled_job_id"] for r in bulk.json()["results"]] == ["a", "b"]
    assert (await kv_spec(nc, "c")).status is ScheduledJobStatus.ACTIVE
    by_ids = (await http.post("/scheduled-jobs/resume", json={"ids": ["a", "c", "zz"]})).json()
    assert [(r["scheduled_job_id"], r["outcome"]) for r in by_ids["results"]] == [
        ("a", "resumed"),
        ("c", "unchanged"),
        ("zz", "not_found"),
    ]
    assert by_ids["changed"] == 1
    both = await http.post("/scheduled-jobs/pause", json={"ids": ["a"], "selector": "team=x"})
    assert error_of(both) == (422, "invalid_request")
    bad_selector = await http.post("/scheduled-jobs/pause", json={"selector": "team"})
    assert error_of(bad_selector) == (422, "invalid_request")
    assert "body.selector" in bad_selector.json()["error"]["message"]


# --- schedule specs ------------------------------------------------------------------------


NOOP_ENTRY = ScraperEntry(
    scraper="noop",
    params_schema={
        "type": "object",
        "properties": {"items": {"type": "integer", "minimum": 0}},
        "additionalProperties": False,
    },
    runner_id="runner-test",
    advertised_at=NOW,
)


async def test_create_replace_delete_schedules(http: httpx.AsyncClient, nc: Client) -> None:
    body = spec("fresh", params={"items": 2}).model_dump(mode="json")
    no_runner = await http.post("/scheduled-jobs", json=body)
    assert error_of(no_runner) == (409, "no_runners")
    assert "unchecked=true" in no_runner.json()["error"]["message"]

    created = await http.post("/scheduled-jobs", params={"unchecked": "true"}, json=body)
    assert created.status_code == 201, created.text
    assert created.json()["created"] is True
    assert (await kv_spec(nc, "fresh")).params == {"items": 2}
    again = await http.post("/scheduled-jobs", params={"unchecked": "true"}, json=body)
    assert error_of(again) == (409, "already_exists")

    scrapers = await nc.jetstream().key_value(names.KV_SCRAPERS)
    await scrapers.put("default.noop", to_json(NOOP_ENTRY))
    unknown = await http.post("/scheduled-jobs", json=spec("x", scraper="selenium").model_dump())
    assert error_of(unknown) == (422, "unknown_scraper")
    bad_params = spec("x", params={"itemz": 1}).model_dump(mode="json")
    refused = await http.post("/scheduled-jobs", json=bad_params)
    assert error_of(refused) == (422, "invalid_params")
    assert "params.itemz" in refused.json()["error"]["message"]
    bad_cron = {**body, "scheduled_job_id": "y", "cron_expression": "61 * * * *"}
    assert error_of(await http.post("/scheduled-jobs", json=bad_cron)) == (422, "invalid_request")
    unknown_field = {**body, "scheduled_job_id": "y", "colour": "red"}
    assert error_of(await http.post("/scheduled-jobs", json=unknown_field))[0] == 422

    replaced = await http.put("/scheduled-jobs/fresh", json={**body, "name": "Renamed"})
    assert replaced.status_code == 200 and replaced.json()["created"] is False
    assert (await kv_spec(nc, "fresh")).name == "Renamed"
    new = await http.put("/scheduled-jobs/other", json={**body, "scheduled_job_id": "other"})
    assert new.status_code == 201 and new.json()["created"] is True
    mismatch = await http.put("/scheduled-jobs/fresh", json={**body, "scheduled_job_id": "z"})
    assert error_of(mismatch) == (422, "invalid_request")

    deleted = await http.delete("/scheduled-jobs/fresh")
    assert deleted.json()["outcome"] == "deleted"
    assert error_of(await http.delete("/scheduled-jobs/fresh")) == (404, "unknown_scheduled_job")
    recreated = await http.post("/scheduled-jobs", json=body)
    assert recreated.status_code == 201, recreated.text
    assert recreated.json()["scheduled_job"]["pool"] == "default"


async def test_a_written_spec_gets_the_pool_its_scraper_is_offered_in(
    http: httpx.AsyncClient, nc: Client
) -> None:
    scrapers = await nc.jetstream().key_value(names.KV_SCRAPERS)
    await scrapers.put("default.noop", to_json(NOOP_ENTRY))
    render = NOOP_ENTRY.model_copy(update={"scraper": "render", "pool": "browser"})
    await scrapers.put("browser.render", to_json(render))
    body = spec("rendered", scraper="render", params={"items": 1}).model_dump(mode="json")
    created = await http.post("/scheduled-jobs", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["scheduled_job"]["pool"] == "browser"
    assert (await kv_spec(nc, "rendered")).pool == "browser"
    elsewhere = await http.put("/scheduled-jobs/rendered", json={**body, "pool": "default"})
    assert error_of(elsewhere) == (422, "unknown_scraper")
    assert "pool 'default' does not offer scraper 'render'" in elsewhere.json()["error"]["message"]
    unchecked = await http.put(
        "/scheduled-jobs/rendered", params={"unchecked": "true"}, json={**body, "name": "Again"}
    )
    assert unchecked.status_code == 200, unchecked.text
    assert (await kv_spec(nc, "rendered")).pool == "browser", "unchecked keeps its pool"


# --- preview and status ----------------------------------------------------------------------


async def test_preview_lists_fire_times_and_words(http: httpx.AsyncClient, nc: Client) -> None:
    nightly = spec("nightly", timezone="America/Indiana/Indianapolis", max_runs=3)
    every_90s = spec("often", cron_expression=None, interval={"seconds": 90})
    await put_schedules(nc.jetstream(), [nightly, every_90s])
    state = await nc.jetstream().key_value(names.KV_TICKER_STATE)
    counted = SlotState(handled_until=datetime(2026, 1, 1, tzinfo=UTC), fired_runs=1, max_runs=3)
    await state.put("nightly", counted.to_json())

    shown = await http.get(
        "/scheduled-jobs/nightly/preview", params={"after": "2026-01-01T00:00:00Z"}
    )
    assert shown.status_code == 200
    body = shown.json()
    assert body["schedule"] == "at 02:00 every day, America/Indiana/Indianapolis"
    assert body["remaining_runs"] == 2
    assert body["fires"] is True
    assert body["next_fire_times"] == ["2026-01-01T07:00:00Z", "2026-01-02T07:00:00Z"]

    often = (await http.get("/scheduled-jobs/often/preview?count=3")).json()
    assert often["schedule"] == "every 1 minute 30 seconds"
    times = [datetime.fromisoformat(t) for t in often["next_fire_times"]]
    assert len(times) == 3 and times[0] > datetime.now(UTC) - timedelta(seconds=1)
    assert [b - a for a, b in zip(times, times[1:], strict=False)] == [timedelta(seconds=90)] * 2

    assert error_of(await http.get("/scheduled-jobs/often/preview?count=0"))[0] == 422
    assert error_of(await http.get("/scheduled-jobs/gone/preview")) == (
        404,
        "unknown_scheduled_job",
    )


async def test_status_shows_leader_schedules_and_lane_lag(
    http: httpx.AsyncClient, nc: Client, start_ticker: StartTicker
) -> None:
    await put_schedules(nc.jetstream(), [spec("a"), spec("b", status=ScheduledJobStatus.PAUSED)])
    ticker = await start_ticker(ticker_id="ticker-one")

    async def leader() -> Any:
        return (await http.get("/api/v1/scheduler/status")).json()["leader"]

    await eventually(leader, lambda found: found == "ticker-one", what="ticker-one leads")
    request = RunRequest(
        job_id="queued-1",
        trigger=Trigger.ADHOC,
        priority=Priority.NORMAL,
        created_at=NOW,
        scraper="noop",
    )
    await publish(
        nc.jetstream(), names.run_subject(DEFAULT_POOL, Priority.NORMAL), request, "queued-1"
    )
    status = (await http.get("/api/v1/scheduler/status")).json()
    assert status["schedules_loaded"] == 2
    lanes = {lane["consumer"]: lane for lane in status["lanes"]}
    assert lanes["runner-default-normal"]["pending"] == 1
    assert lanes["runner-default-immediate"]["pending"] == 0
    assert {c["consumer"] for c in status["recorder"]} == {"recorder-events", "recorder-items"}
    assert status["runners"] == [] and status["scrapers"] == []
    metrics = (await http.get("/api/v1/scheduler/metrics")).json()
    assert metrics["jobs"]["queued"] == 1
    assert ticker.is_ready()


# --- executions and statistics -----------------------------------------------------------------


async def test_executions_filters_cursor_and_stats(
    http: httpx.AsyncClient, mongo_db: AsyncDatabase[Document]
) -> None:
    job = spec("stats-job")
    await store_schedule(mongo_db, job, NOW)
    await store_schedule(mongo_db, spec("other"), NOW)
    base = NOW - timedelta(minutes=30)
    events = [
        finished_event(job, f"scheduled_stats-job_{i}", base + timedelta(minutes=i), duration_ms=d)
        for i, d in enumerate((100, 200, 300))
    ]
    events.append(
        finished_event(
            job, "failed-1", base + timedelta(minutes=3), JobStatus.FAILED, Trigger.TRIGGERED
        )
    )
    events.append(finished_event(job, "running-1", base + timedelta(minutes=4), JobStatus.RUNNING))
    events.append(finished_event(spec("other"), "other-1", base))
    await store_runs(mongo_db, events)

    path = "/api/v1/jobs/stats-job/executions"
    everything = (await http.get(path)).json()
    assert everything["total"] == 5
    assert [e["job_id"] for e in everything["executions"]] == [
        "running-1",
        "failed-1",
        "scheduled_stats-job_2",
        "scheduled_stats-job_1",
        "scheduled_stats-job_0",
    ]
    paged: list[str] = []
    cursor = None
    while True:
        page = await http.get(path, params={"limit": 2, **({"cursor": cursor} if cursor else {})})
        paged += [e["job_id"] for e in page.json()["executions"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert paged == [e["job_id"] for e in everything["executions"]]

    failed = (await http.get(path, params={"status": "failed"})).json()
    assert [e["job_id"] for e in failed["executions"]] == ["failed-1"]
    assert failed["executions"][0]["error_message"] == "boom"
    triggered = (await http.get(path, params={"trigger": "triggered"})).json()
    assert triggered["total"] == 1
    window = {
        "since": (base + timedelta(minutes=1)).isoformat(),
        "until": (base + timedelta(minutes=3)).replace(tzinfo=None).isoformat(),
    }
    in_window = (await http.get(path, params=window)).json()
    assert [e["job_id"] for e in in_window["executions"]] == [
        "scheduled_stats-job_2",
        "scheduled_stats-job_1",
    ]
    everywhere = (await http.get("/api/v1/executions", params={"limit": 100})).json()
    assert everywhere["total"] == 6
    other = (await http.get("/api/v1/executions?scheduled_job_id=other")).json()
    assert [e["job_id"] for e in other["executions"]] == ["other-1"]
    assert error_of(await http.get("/api/v1/jobs/nope/executions")) == (
        404,
        "unknown_scheduled_job",
    )
    assert error_of(await http.get(path, params={"cursor": "!!"})) == (422, "invalid_cursor")
    assert error_of(await http.get(path, params={"limit": 0}))[0] == 422

    one = (await http.get("/api/v1/executions/failed-1")).json()
    assert one["status"] == "failed" and one["trigger"] == "triggered"
    assert one["metadata"] == {"pages_fetched": 2}
    (attempt,) = one["attempts"]
    assert attempt["attempt"] == 1 and attempt["status"] == "failed"
    assert (attempt["error_type"], attempt["error_message"]) == ("RuntimeError", "boom")
    assert attempt["traceback"].endswith("RuntimeError: boom")
    assert attempt["started_at"] == one["started_at"]
    assert attempt["completed_at"] == one["completed_at"]
    listed = {e["job_id"]: e for e in everything["executions"]}["failed-1"]
    assert (listed["attempts"], listed["metadata"]) == (None, None)  # one execution shows them
    assert error_of(await http.get("/api/v1/executions/nope")) == (404, "unknown_job")

    stats = (await http.get("/api/v1/jobs/stats-job/stats")).json()
    assert stats["all_time"]["runs"] == 4
    assert stats["all_time"]["completed"] == 3
    assert stats["all_time"]["failed"] == 1
    assert stats["all_time"]["success_rate"] == 0.75
    assert stats["all_time"]["duration_ms_min"] == 100
    assert stats["all_time"]["duration_ms_max"] == 1500
    assert 1500 * 0.99 <= stats["all_time"]["duration_ms_p95"] <= 1500
    assert stats["all_time"]["items_scraped"] == 40
    assert stats["recent"]["runs"] == 4
    assert [stats[w]["runs"] for w in ("last_24h", "last_7d", "last_30d")] == [4, 4, 4]
    assert {hour["period"] for hour in stats["hourly"]} <= {
        hour_period(NOW - timedelta(hours=1)),
        hour_period(NOW),
    }
    assert sum(hour["runs"] for hour in stats["hourly"]) == 4
    assert stats["last_execution"]["job_id"] == "running-1"
    assert error_of(await http.get("/api/v1/jobs/nope/stats")) == (404, "unknown_scheduled_job")
    assert error_of(await http.get("/api/v1/jobs/stats-job/stats?hours=0"))[0] == 422

    metrics = (await http.get("/api/v1/scheduler/metrics")).json()
    assert metrics["scheduled_jobs"] == {"total": 2, "active": 2, "paused": 0, "inactive": 0}
    assert metrics["all_time"]["runs"] == 5
    assert metrics["last_24h"]["runs"] == 5
    assert metrics["last_7d"]["runs"] == metrics["last_30d"]["runs"] == 5
    assert metrics["jobs"] == {"queued": 0, "running": 0}


# --- the whole path: API -> KV / NATS -> services -> MongoDB -> API ------------------------


async def test_runs_through_the_real_services(
    settings: Settings, endpoints: Endpoints, http: httpx.AsyncClient
) -> None:
    flaky = spec("flaky", params={"fail_attempts": 5}, cron_expression="0 0 1 1 *")
    fine = spec("fine", params={"items": 2}, cron_expression="0 0 1 1 *")
    async with running_stack(settings, endpoints):

        async def created(job: ScheduledJob) -> int:
            answer = await http.post("/scheduled-jobs", json=job.model_dump(mode="json"))
            return answer.status_code

        for job in (flaky, fine):  # checked against what the runner advertises
            await eventually(partial(created, job), lambda s: s == 201, what="created")
        shown = await eventually(
            lambda: http.get("/scheduled-jobs/fine"), lambda r: r.status_code == 200
        )
        assert shown.json()["scheduled_job"]["name"] == "Job fine"

        ids = {}
        for job in (flaky, fine):
            answer = await http.post("/scrape/trigger", json={"job_id": job.scheduled_job_id})
            ids[job.scheduled_job_id] = answer.json()["job_id"]

        async def status_of(job_id: str) -> str:
            answer = await http.get(f"/api/v1/executions/{job_id}")
            return str(answer.json().get("status")) if answer.status_code == 200 else "absent"

        await eventually(lambda: status_of(ids["flaky"]), lambda s: s == "failed")
        await eventually(lambda: status_of(ids["fine"]), lambda s: s == "completed")

        again = await http.post(f"/api/v1/jobs/{ids['flaky']}/retry")
        assert again.status_code == 200, again.text
        assert again.json()["job_id"].startswith("retry_")
        retried = await eventually(
            lambda: http.get(f"/api/v1/executions/{again.json()['job_id']}"),
            lambda r: r.status_code == 200,
        )
        assert retried.json()["retry_of"] == ids["flaky"]
        refused = await http.post(f"/api/v1/jobs/{ids['fine']}/retry")
        assert error_of(refused) == (409, "not_retryable")
        assert error_of(await http.post("/api/v1/jobs/nope/retry")) == (404, "unknown_job")

        finished = await http.post(f"/api/v1/jobs/{ids['fine']}/cancel", json={"reason": "x"})
        assert finished.status_code == 200
        assert finished.json()["found"] == "finished"
        assert error_of(await http.post("/api/v1/jobs/nope/cancel")) == (404, "unknown_job")

        stats = await eventually(
            lambda: http.get("/api/v1/jobs/fine/stats"),
            lambda r: r.json()["all_time"]["completed"] == 1,
        )
        assert stats.json()["all_time"]["items_saved"] == 2
        status = (await http.get("/api/v1/scheduler/status")).json()
        assert "noop" in status["scrapers"] and len(status["runners"]) == 1


# --- the process ------------------------------------------------------------------------------


async def test_natscron_api_serves_and_stops_on_sigterm(
    endpoints: Endpoints, tmp_path: Path
) -> None:
    health_port, api_port = free_port(), free_port()
    env = service_env(endpoints, tmp_path, health_port)
    code, _, err = await run_cli("api", env=env)
    assert code == 2
    assert "NATSCRON_API_AUTH=none" in err

    env |= {"NATSCRON_API_AUTH": "none", "NATSCRON_API_PORT": str(api_port)}
    process = await asyncio.create_subprocess_exec(
        *NATSCRON, "api", env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}") as http:

            async def ready() -> int:
                try:
                    return (await http.get("/readyz")).status_code
                except httpx.TransportError:
                    return 0

            await eventually(ready, lambda status: status == 200, what="api ready")
            assert (await http.get("/scheduled-jobs")).json()["total"] == 0
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{health_port}") as health:
            assert (await health.get("/healthz")).status_code == 200
            assert "natscron_api_requests_total" in (await health.get("/metrics")).text
    finally:
        process.send_signal(signal.SIGTERM)
        _, err_bytes = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err_bytes.decode()
    assert "api stopped" in err_bytes.decode()


async def test_a_busy_port_is_a_clear_error(settings: Settings, endpoints: Endpoints) -> None:
    async with running_api(api_settings(settings), endpoints) as first:
        second = ApiService(api_settings(settings, api_port=first.port), endpoints)
        with pytest.raises(Exception, match="cannot listen on 127.0.0.1"):
            await second.start()
        fallback = ApiService(
            api_settings(settings, api_port=first.port), endpoints, free_port_if_busy=True
        )
        await fallback.start()
        try:
            assert fallback.port not in (None, first.port)
        finally:
            await fallback.stop()


def test_misconfigured_auth_is_refused_before_start() -> None:
    endpoints = Endpoints(nats_url="nats://127.0.0.1:1", mongo_url="mongodb://127.0.0.1:1/x")
    settings = Settings().model_copy(
        update={"api_auth": "bearer", "api_jwt_key": None, "api_tokens": None}
    )
    with pytest.raises(Exception, match="NATSCRON_API_JWT_KEY or NATSCRON_API_TOKENS"):
        ApiService(settings, endpoints)
    with pytest.raises(Exception, match="unset one or the other"):
        ApiService(api_settings(settings, api_auth="none"), endpoints)
    with pytest.raises(Exception, match="at least 32 bytes"):
        ApiService(api_settings(settings, api_jwt_key=SecretStr("short")), endpoints)


async def test_an_unexpected_error_is_a_logged_500_in_the_error_shape(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(self: Queries, job_id: str) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(Queries, "execution", broken)
    answer = await http.get("/api/v1/executions/some-job")
    assert error_of(answer) == (500, "internal_error")
    assert "RuntimeError" in answer.json()["error"]["message"]
    assert (await http.get("/healthz")).status_code == 200


async def test_readyz_says_when_mongodb_does_not_answer(
    settings: Settings, nats_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service_module, "MONGO_PING_TIMEOUT_SECONDS", 0.2)
    nowhere = Endpoints(nats_url=nats_server.url, mongo_url=f"mongodb://127.0.0.1:{free_port()}/x")
    async with running_api(api_settings(settings), nowhere) as api, client(api) as http:
        answer = await http.get("/readyz")
        assert answer.status_code == 503
        assert answer.text.startswith("MongoDB unreachable")
        assert (await http.get("/healthz")).status_code == 200
