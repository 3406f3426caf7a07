"""The NATS face of the API (`natscron.api.*`, a NATS micro service) on real servers: the API
started in-process as for the HTTP tests, asked over NATS, its answers compared with HTTP's."""

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from nats.aio.client import Client
from pymongo.asynchronous.database import AsyncDatabase

from natscron_api import ApiService
from natscron_api.micro import ENDPOINTS, SERVICE_NAME
from natscron_api.requests import subject_of
from natscron_shared.contract import names
from natscron_shared.contract.enums import JobStatus, ScheduledJobStatus, Trigger
from natscron_shared.contract.storage import Document
from natscron_shared.nats.connection import to_json
from natscron_shared.nats.schedule_bucket import put_schedules
from natscron_shared.runtime.endpoints import Endpoints
from tests.api.api_support import (
    finished_event,
    spec,
    store_runs,
    store_schedule,
)
from tests.api.test_api import NOOP_ENTRY, NOW, kv_spec
from tests.cli.test_cli import cli_env, run_cli
from tests.conftest import StartTicker

pytestmark = pytest.mark.integration


async def ask(nc: Client, endpoint: str, body: Any = None) -> Any:
    """The reply body of a successful request; fails the test on an error reply."""
    data = b"" if body is None else json.dumps(body).encode()
    reply = await nc.request(subject_of(endpoint), data, timeout=10)
    assert not (reply.headers or {}).get("Nats-Service-Error-Code"), reply.data
    return json.loads(reply.data)


async def refused(nc: Client, endpoint: str, body: Any = None, raw: bytes | None = None) -> str:
    """The code of an error reply, checking the micro headers and the body agree."""
    data = raw if raw is not None else json.dumps(body).encode()
    reply = await nc.request(subject_of(endpoint), data, timeout=10)
    headers = reply.headers or {}
    error = json.loads(reply.data)
    assert set(error) == {"error"} and set(error["error"]) == {"code", "message"}, error
    assert headers["Nats-Service-Error"] == error["error"]["message"]
    assert "Value error" not in error["error"]["message"]
    status = {"unknown_scheduled_job": "404", "unknown_job": "404", "invalid_state": "409"}
    expected = status.get(error["error"]["code"])
    assert expected is None or headers["Nats-Service-Error-Code"] == expected
    code: str = error["error"]["code"]
    return code


async def test_srv_info_discovers_every_endpoint(api: ApiService, nc: Client) -> None:
    reply = await nc.request(f"$SRV.INFO.{SERVICE_NAME}", b"", timeout=5)
    info = json.loads(reply.data)
    assert info["name"] == SERVICE_NAME
    subjects = {endpoint["subject"] for endpoint in info["endpoints"]}
    assert subjects == {subject_of(endpoint.subject) for endpoint in ENDPOINTS}
    assert {
        "natscron.api.schedules.list",
        "natscron.api.schedules.describe",
        "natscron.api.jobs.list",
        "natscron.api.jobs.cancel",
        "natscron.api.trigger",
        "natscron.api.status",
        "natscron.api.metrics",
    } <= subjects
    assert all(endpoint["metadata"]["description"] for endpoint in info["endpoints"])
    ping = json.loads((await nc.request("$SRV.PING", b"", timeout=5)).data)
    assert ping["name"] == SERVICE_NAME


async def test_schedule_endpoints_match_http_and_refuse_bad_requests(
    http: httpx.AsyncClient, nc: Client, mongo_db: AsyncDatabase[Document]
) -> None:
    for name in ("a", "b", "c"):
        await store_schedule(mongo_db, spec(name), NOW)
    listed = await ask(nc, "schedules.list", {"limit": 2})
    assert listed == (await http.get("/scheduled-jobs", params={"limit": 2})).json()
    assert [s["scheduled_job_id"] for s in listed["scheduled_jobs"]] == ["a", "b"]
    rest = await ask(nc, "schedules.list", {"cursor": listed["next_cursor"]})
    assert [s["scheduled_job_id"] for s in rest["scheduled_jobs"]] == ["c"]
    assert (await ask(nc, "schedules.get", {"scheduled_job_id": "a"}))["scheduled_job_id"] == "a"
    described = await ask(nc, "schedules.describe", {"scheduled_job_id": "a"})
    assert described == (await http.get("/scheduled-jobs/a")).json()

    assert await refused(nc, "schedules.get", {"scheduled_job_id": "nope"}) == (
        "unknown_scheduled_job"
    )
    assert await refused(nc, "schedules.list", {"limit": 0}) == "invalid_request"
    assert await refused(nc, "schedules.list", {"colour": "red"}) == "invalid_request"
    assert await refused(nc, "schedules.list", raw=b"{not json") == "malformed_json"
    assert await refused(nc, "schedules.list", {"cursor": "!!"}) == "invalid_cursor"

    body = spec("fresh", params={"items": 2}).model_dump(mode="json")
    assert await refused(nc, "schedules.create", {"spec": body}) == "no_runners"
    created = await ask(nc, "schedules.create", {"spec": body, "unchecked": True})
    assert created["created"] is True and (await kv_spec(nc, "fresh")).params == {"items": 2}
    again = {"spec": body, "unchecked": True}
    assert await refused(nc, "schedules.create", again) == "already_exists"
    scrapers = await nc.jetstream().key_value(names.KV_SCRAPERS)
    await scrapers.put("default.noop", to_json(NOOP_ENTRY))
    bad_params = {"spec": {**body, "params": {"itemz": 1}}}
    assert await refused(nc, "schedules.create", bad_params) == "invalid_params"
    replaced = await ask(
        nc, "schedules.replace", {"scheduled_job_id": "fresh", "spec": {**body, "name": "New"}}
    )
    assert replaced["created"] is False and (await kv_spec(nc, "fresh")).name == "New"
    mismatch = {"scheduled_job_id": "zz", "spec": body}
    assert await refused(nc, "schedules.replace", mismatch) == "invalid_request"

    preview = await ask(nc, "schedules.preview", {"scheduled_job_id": "fresh", "count": 3})
    assert len(preview["next_fire_times"]) == 3 and preview["fires"] is True
    paused = await ask(nc, "schedules.pause", {"scheduled_job_id": "fresh", "reason": "down"})
    assert paused["outcome"] == "paused"
    assert (await kv_spec(nc, "fresh")).paused_reason == "down"
    assert await refused(nc, "schedules.pause", {"scheduled_job_id": "fresh"}) == "invalid_state"
    resumed = await ask(nc, "schedules.resume", {"scheduled_job_id": "fresh"})
    assert resumed["outcome"] == "resumed"

    await put_schedules(nc.jetstream(), [spec("x", labels={"team": "t"}), spec("y")])
    bulk = await ask(nc, "schedules.bulk.pause", {"selector": "team=t"})
    assert bulk["changed"] == 1 and (await kv_spec(nc, "x")).status is ScheduledJobStatus.PAUSED
    both = {"ids": ["x"], "selector": "team=t"}
    assert await refused(nc, "schedules.bulk.resume", both) == "invalid_request"
    gone = await ask(nc, "schedules.bulk.delete", {"ids": ["x", "y", "nope"]})
    assert [r["outcome"] for r in gone["results"]] == ["deleted", "deleted", "not_found"]
    deleted = await ask(nc, "schedules.delete", {"scheduled_job_id": "fresh"})
    assert deleted["outcome"] == "deleted"
    assert await refused(nc, "schedules.delete", {"scheduled_job_id": "fresh"}) == (
        "unknown_scheduled_job"
    )


async def test_job_endpoints_stats_and_status_match_http(
    http: httpx.AsyncClient,
    nc: Client,
    mongo_db: AsyncDatabase[Document],
    start_ticker: StartTicker,
) -> None:
    job = spec("stats-job")
    await store_schedule(mongo_db, job, NOW)
    base = NOW - timedelta(minutes=30)
    await store_runs(
        mongo_db,
        [
            finished_event(job, "ok-1", base),
            finished_event(job, "failed-1", base + timedelta(minutes=1), JobStatus.FAILED),
            finished_event(job, "ok-2", base + timedelta(minutes=2), trigger=Trigger.TRIGGERED),
        ],
    )
    listed = await ask(nc, "jobs.list", {"scheduled_job_id": "stats-job", "limit": 2})
    assert (
        listed == (await http.get("/api/v1/executions?scheduled_job_id=stats-job&limit=2")).json()
    )
    assert [e["job_id"] for e in listed["executions"]] == ["ok-2", "failed-1"]
    rest = await ask(nc, "jobs.list", {"cursor": listed["next_cursor"]})
    assert [e["job_id"] for e in rest["executions"]] == ["ok-1"]
    failed = await ask(nc, "jobs.list", {"status": "failed"})
    assert [e["job_id"] for e in failed["executions"]] == ["failed-1"]
    window = {"since": (base + timedelta(minutes=1)).replace(tzinfo=None).isoformat()}
    assert (await ask(nc, "jobs.list", window))["total"] == 2
    assert (await ask(nc, "jobs.list", {"trigger": "triggered"}))["total"] == 1
    assert await refused(nc, "jobs.list", {"status": "lost"}) == "invalid_request"

    one = await ask(nc, "jobs.get", {"job_id": "failed-1"})
    assert one == (await http.get("/api/v1/executions/failed-1")).json()
    assert await refused(nc, "jobs.get", {"job_id": "nope"}) == "unknown_job"

    stats = await ask(nc, "schedules.stats", {"scheduled_job_id": "stats-job"})
    assert stats == (await http.get("/api/v1/jobs/stats-job/stats")).json()
    assert stats["all_time"]["runs"] == 3
    metrics = await ask(nc, "metrics")
    http_metrics = (await http.get("/api/v1/scheduler/metrics")).json()
    assert {k: v for k, v in metrics.items() if k != "at"} == {
        k: v for k, v in http_metrics.items() if k != "at"
    }
    assert metrics["all_time"]["runs"] == 3

    no_ticker = {"scheduled_job_id": "stats-job"}
    assert await refused(nc, "trigger", no_ticker) == "unavailable"
    await start_ticker(ticker_id="ticker-micro")
    await put_schedules(nc.jetstream(), [job])
    triggered = await ask(nc, "trigger", no_ticker)
    assert triggered["job_id"].startswith("triggered_stats-job_")
    assert await refused(nc, "trigger", {"scheduled_job_id": "nope"}) == "unknown_scheduled_job"
    unseen = {"job_id": "ok-1"}  # only in MongoDB here, not in the event history
    assert await refused(nc, "jobs.retry", unseen) == "unknown_job"
    status = await ask(nc, "status")
    assert status["schedules_loaded"] == 1
    assert [lane["consumer"] for lane in status["lanes"]] == [
        "runner-default-immediate",
        "runner-default-normal",
    ]
    assert status["pools"] == {}
    assert await refused(nc, "jobs.cancel", {"job_id": "ok-1"}) == "unavailable"
    assert await refused(nc, "status", {"verbose": True}) == "invalid_request"


async def test_backfill_over_nats_http_and_the_cli(
    http: httpx.AsyncClient, nc: Client, start_ticker: StartTicker, endpoints: Endpoints
) -> None:
    await start_ticker(ticker_id="ticker-backfill")
    hourly = spec("hourly", cron_expression="0 * * * *")
    await put_schedules(nc.jetstream(), [hourly, spec("held", status=ScheduledJobStatus.PAUSED)])
    hour = NOW.replace(minute=0, second=0)
    window = {"start": (hour - timedelta(hours=3)).isoformat(), "end": hour.isoformat()}

    dry = await ask(
        nc, "schedules.backfill", {"scheduled_job_id": "hourly", **window, "dry_run": True}
    )
    assert len(dry["slots"]) == 4 and dry["published"] == 0 and dry["dry_run"] is True
    over_http = await http.post("/scheduled-jobs/hourly/backfill", json={**window, "dry_run": True})
    assert over_http.status_code == 200, over_http.text
    assert over_http.json() == dry

    code, out, err = await run_cli(
        "backfill",
        "hourly",
        "--from",
        window["start"],
        "--to",
        window["end"],
        "-o",
        "json",
        env=cli_env(NATSCRON_NATS_URL=endpoints.nats_url),
    )
    assert code == 0, err
    assert json.loads(out)["published"] == 4
    again = await ask(nc, "schedules.backfill", {"scheduled_job_id": "hourly", **window})
    assert (again["published"], again["skipped_existing"]) == (0, 4)

    paused = {"scheduled_job_id": "held", **window}
    assert await refused(nc, "schedules.backfill", paused) == "not_active"
    backwards = {"scheduled_job_id": "hourly", "start": window["end"], "end": window["start"]}
    assert await refused(nc, "schedules.backfill", backwards) == "invalid_request"
    future = {**window, "end": (NOW + timedelta(days=1)).isoformat()}
    refused_http = await http.post("/scheduled-jobs/hourly/backfill", json=future)
    assert refused_http.status_code == 422
    assert refused_http.json()["error"]["code"] == "invalid_range"
