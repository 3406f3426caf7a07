"""The CLI's query and control commands as a user runs them (a real process), asking the API
over NATS only: `-o json` prints what HTTP answers for the same query, errors are sentences
with the documented exit statuses, and `apply --dry-run / --prune` show and make changes."""

import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import yaml
from nats.aio.client import Client
from pymongo.asynchronous.database import AsyncDatabase

from natscron_api import ApiService
from natscron_shared.contract.enums import JobStatus, ScheduledJobStatus
from natscron_shared.contract.storage import Document
from natscron_shared.nats.schedule_bucket import put_schedules
from natscron_shared.runtime.endpoints import Endpoints
from natscron_shared.runtime.mongo import new_client
from tests.api.api_support import (
    finished_event,
    spec,
    store_runs,
    store_schedule,
)
from tests.api.test_api import NOW, kv_spec
from tests.cli.test_cli import cli_env, run_cli
from tests.cli.test_migrate import legacy_definitions
from tests.conftest import StartTicker
from tests.servers import Server, with_database

pytestmark = pytest.mark.integration

NOT_FOUND, CONFLICT, USAGE = 3, 4, 2


@pytest.fixture
def env(endpoints: Endpoints) -> dict[str, str]:
    """Only NATS: the query commands need nothing else."""
    return cli_env(NATSCRON_NATS_URL=endpoints.nats_url)


async def cli_json(*args: str, env: dict[str, str]) -> object:
    code, out, err = await run_cli(*args, "-o", "json", env=env)
    assert (code, err) == (0, ""), err
    return json.loads(out)


async def test_json_output_equals_http_and_errors_have_exit_statuses(
    http: httpx.AsyncClient,
    nc: Client,
    mongo_db: AsyncDatabase[Document],
    env: dict[str, str],
) -> None:
    job = spec("alpha", labels={"team": "t"})
    await put_schedules(nc.jetstream(), [job, spec("beta")])
    await store_schedule(mongo_db, job, NOW)
    await store_schedule(mongo_db, spec("beta"), NOW)
    base = NOW - timedelta(minutes=10)
    await store_runs(
        mongo_db,
        [
            finished_event(job, "alpha-1", base),
            finished_event(job, "alpha-2", base + timedelta(minutes=1), JobStatus.FAILED),
        ],
    )

    same = [
        (("schedules", "list"), "/scheduled-jobs"),
        (("schedules", "describe", "alpha", "--runs", "5"), "/scheduled-jobs/alpha?limit=5"),
        (
            ("jobs", "list", "--schedule", "alpha", "--status", "failed"),
            "/api/v1/executions?scheduled_job_id=alpha&status=failed&limit=20",
        ),
        (("jobs", "get", "alpha-1"), "/api/v1/executions/alpha-1"),
        (("stats", "alpha"), "/api/v1/jobs/alpha/stats"),
        (
            ("schedules", "preview", "alpha", "--count", "3"),
            "/scheduled-jobs/alpha/preview?count=3",
        ),
    ]
    for args, path in same:
        printed = await cli_json(*args, env=env)
        answered = (await http.get(path)).json()
        if "next_fire_times" in answered:  # counted from "now", which moves on
            assert len(printed["next_fire_times"]) == 3  # type: ignore[index]
            continue
        assert printed == answered, args

    code, out, _ = await run_cli("jobs", "get", "alpha-2", "-o", "yaml", env=env)
    assert code == 0 and yaml.safe_load(out)["error_message"] == "boom"
    assert yaml.safe_load(out)["attempts"][0]["traceback"].endswith("RuntimeError: boom")
    code, out, _ = await run_cli("jobs", "get", "alpha-2", env=env)
    assert code == 0 and "metadata" in out and "pages_fetched=2" in out
    attempts = out.split("attempts:")[1]
    assert "runner-1" in attempts and "1500 ms" in attempts and "RuntimeError: boom" in attempts
    assert "traceback of attempt 1:" in out and out.rstrip().endswith("RuntimeError: boom")

    code, out, _ = await run_cli("jobs", "--limit", "1", env=env)
    assert code == 0 and "alpha-2" in out and "alpha-1" not in out
    cursor = out.split("--cursor ")[1].split()[0]
    code, out, _ = await run_cli("jobs", "list", "--limit", "1", "--cursor", cursor, env=env)
    assert code == 0 and "alpha-1" in out
    code, out, _ = await run_cli("schedules", "list", env=env)
    assert code == 0 and "alpha" in out and "beta" in out and "cron 0 2 * * *" in out

    code, _, err = await run_cli("schedules", "get", "nope", env=env)
    assert (code, err.strip()) == (NOT_FOUND, "natscron: no scheduled job with id 'nope'")
    code, _, err = await run_cli("jobs", "list", "--limit", "0", env=env)
    assert code == USAGE and "--limit" in err
    code, _, err = await run_cli("schedules", "get", "bad id!", env=env)
    assert code == USAGE and "Traceback" not in err and "scheduled_job_id" in err

    code, out, err = await run_cli("pause", "alpha", "--reason", "down", env=env)
    assert (code, out.strip()) == (0, "alpha: paused"), err
    assert (await kv_spec(nc, "alpha")).status is ScheduledJobStatus.PAUSED
    code, _, err = await run_cli("schedules", "pause", "alpha", env=env)
    assert code == CONFLICT and "alpha" in err
    code, out, _ = await run_cli("schedules", "resume", "--selector", "team=t", env=env)
    assert (code, out.strip()) == (0, "alpha: resumed")
    code, _, err = await run_cli("schedules", "delete", "beta", "--selector", "a=b", env=env)
    assert code == USAGE and "not both" in err
    code, out, _ = await run_cli("delete", "beta", env=env)
    assert (code, out.strip()) == (0, "beta: deleted; history kept")

    code, _, err = await run_cli("trigger", "alpha", env=env)
    assert code == 1 and "no ticker answered on jobs.trigger" in err

    code, out, _ = await run_cli("cancel", "--selector", "team=t", env=env)
    assert (code, out.strip()) == (0, "no job matched")  # alpha's runs are final
    code, out, _ = await run_cli("jobs", "cancel", "alpha-1", "alpha-2", env=env)
    assert code == 0 and out.count("failed: no runner answered on jobs.cancel") == 2, out
    code, _, err = await run_cli("jobs", "cancel", "alpha-1", "--selector", "a=b", env=env)
    assert code == USAGE and "not both" in err
    code, _, err = await run_cli("jobs", "cancel", "--selector", "team", env=env)
    assert code == USAGE and "selector" in err and "Traceback" not in err


async def test_explain_prints_the_timeline_http_answers(
    http: httpx.AsyncClient, nc: Client, env: dict[str, str]
) -> None:
    await put_schedules(nc.jetstream(), [spec("nightly", timezone="Europe/Paris")])
    start, end = (NOW - timedelta(days=2)).isoformat(), NOW.isoformat()
    printed = await cli_json(
        "schedules", "explain", "nightly", "--from", start, "--to", end, env=env
    )
    answered = (
        await http.get("/scheduled-jobs/nightly/explain", params={"from": start, "to": end})
    ).json()
    assert isinstance(printed, dict) and printed.pop("now") and answered.pop("now")
    assert printed == answered
    assert [slot["outcome"] for slot in answered["slots"]] == ["no_record", "no_record"]

    code, out, err = await run_cli(
        "schedules", "explain", "nightly", "--from", start, "--to", end, env=env
    )
    assert code == 0, err
    assert "wall times in Europe/Paris" in out and "NOMINAL" in out
    assert ": 2 no_record" in out and out.count("no run and no decision recorded") == 2
    assert "T02:00:00.000+0" in out  # due at 02:00 in Paris, whatever its offset


async def test_cli_without_the_api_says_so(nc: Client, env: dict[str, str]) -> None:
    code, _, err = await run_cli("status", env=env)
    assert code == 1
    assert "no natscron API answered on natscron.api.status" in err


SCHEDULES = """
scheduled_jobs:
  - {scheduled_job_id: alpha, name: Renamed, cron_expression: "0 2 * * *", scraper: noop}
  - {scheduled_job_id: gamma, name: New, cron_expression: "0 3 * * *", scraper: noop}
"""


async def test_apply_dry_run_shows_the_diff_and_prune_asks_first(
    nc: Client, env: dict[str, str], tmp_path: Path
) -> None:
    await put_schedules(nc.jetstream(), [spec("alpha"), spec("beta")])
    path = tmp_path / "schedules.yaml"
    path.write_text(SCHEDULES)
    apply = ("apply", "-f", str(path), "--unchecked")

    plan = await cli_json(*apply, "--dry-run", "--prune", env=env)
    assert plan == {
        "file": str(path),
        "dry_run": True,
        "changes": [
            {
                "scheduled_job_id": "alpha",
                "action": "updated",
                "fields": {"name": {"from": "Job alpha", "to": "Renamed"}},
            },
            {"scheduled_job_id": "gamma", "action": "created", "fields": {}},
            {"scheduled_job_id": "beta", "action": "deleted", "fields": {}},
        ],
    }
    code, out, _ = await run_cli(*apply, "--dry-run", env=env)
    assert code == 0
    assert 'alpha: updated (name: "Job alpha" -> "Renamed")' in out
    assert "dry run, nothing written: would be 1 created, 1 updated" in out
    assert (await kv_spec(nc, "alpha")).name == "Job alpha"

    code, _, err = await run_cli(*apply, "--prune", env=env)
    assert code == USAGE and "--prune would delete 1 scheduled job(s)" in err and "beta" in err
    assert (await kv_spec(nc, "alpha")).name == "Job alpha"

    code, out, err = await run_cli(*apply, "--prune", "--yes", env=env)
    assert code == 0, err
    assert "applied 2 scheduled job(s): alpha, gamma" in out
    assert (await kv_spec(nc, "alpha")).name == "Renamed"
    assert (await kv_spec(nc, "gamma")).name == "New"
    bucket = await nc.jetstream().key_value("scheduled_jobs")
    assert sorted(await bucket.keys()) == ["alpha", "gamma"]
    code, out, _ = await run_cli(*apply, env=env)
    assert "alpha: unchanged" in out and "gamma: unchanged" in out

    path.write_text("scheduled_jobs: [ {")
    code, _, err = await run_cli(*apply, env=env)
    assert code == USAGE and f"{path}: not valid YAML" in err


@pytest.fixture
async def legacy_url(mongo_server: Server) -> AsyncIterator[str]:
    """A legacy app's database holding its recurring definitions (`tests/cli/test_migrate.py`)."""
    url = with_database(mongo_server.url, f"legacy_{uuid.uuid4().hex[:12]}")
    client = new_client(url)
    await client.get_default_database()["jobs"].insert_many(legacy_definitions())
    yield url
    await client.drop_database(client.get_default_database().name)
    await client.close()


async def test_migrate_command_reports_a_dry_run(
    legacy_url: str, endpoints: Endpoints, nc: Client
) -> None:
    env = cli_env(NATSCRON_NATS_URL=endpoints.nats_url, NATSCRON_MONGO_URL=endpoints.mongo_url)
    args = ("migrate", "--from", legacy_url, "--scraper", "http", "--unchecked", "--dry-run")
    report = await cli_json(*args, env=env)
    assert isinstance(report, dict) and report["dry_run"] is True
    assert report["definition_counts"]["created"] >= 1
    bucket = await nc.jetstream().key_value("scheduled_jobs")
    assert (await bucket.status()).values == 0  # the dry run wrote no spec
    code, out, err = await run_cli(*args, env=env)
    assert code == 0, err
    assert "dry run: nothing was written" in out
    code, _, err = await run_cli("migrate", "--from", endpoints.mongo_url, env=env)
    assert code == USAGE and "natscron's own database" in err


async def test_mistakes_a_new_user_makes_are_said_with_the_way_on(
    api: ApiService,
    start_ticker: StartTicker,
    nc: Client,
    mongo_db: AsyncDatabase[Document],
    env: dict[str, str],
) -> None:
    austin = spec("demo-austin-for-sale", status="paused", paused_reason="site down")
    denver, fresh = spec("demo-denver-for-rent"), spec("applied-just-now")
    await start_ticker()
    await put_schedules(nc.jetstream(), [austin, denver, fresh])
    await store_schedule(mongo_db, denver, NOW)  # `fresh` is in KV only, not yet mirrored

    code, out, err = await run_cli("trigger", "demo-austin-for-sale", env=env)
    assert (code, out) == (CONFLICT, "")
    assert "scheduled job 'demo-austin-for-sale' is paused (site down)" in err
    assert "natscron trigger --force" in err
    code, out, err = await run_cli("trigger", "demo-austin-for-sale", "--force", env=env)
    assert code == 0, err
    assert out.startswith("triggered_demo-austin-for-sale_")
    assert out.rstrip().endswith("to run immediately; it stays paused")
    assert (await kv_spec(nc, "demo-austin-for-sale")).status is ScheduledJobStatus.PAUSED

    code, out, err = await run_cli("jobs", "list", "--schedule", "demo-austn-for-sale", env=env)
    assert (code, out) == (NOT_FOUND, "")
    assert err.startswith("natscron: no scheduled job with id 'demo-austn-for-sale'")
    assert "(did you mean 'demo-austin-for-sale'" in err
    for known in ("demo-denver-for-rent", "applied-just-now"):
        code, out, err = await run_cli("jobs", "list", "--schedule", known, env=env)
        assert (code, out.strip(), err) == (0, "no runs match", "")
    code, _, err = await run_cli("stats", "demo-denvr-for-rent", env=env)
    assert code == NOT_FOUND and "(did you mean 'demo-denver-for-rent'" in err
