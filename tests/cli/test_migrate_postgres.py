"""`natscron migrate --from postgresql://...` from seed 003's and seed 004's tables on a real
PostgreSQL server: schedules with the right cron or interval and zone, every execution a
`jobs` document of its schedule, counts equal to the source's, once; and the ticker fires
the migrated schedules when the source scheduler would have."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from pymongo.asynchronous.database import AsyncDatabase

from natscron.migrate import migrate
from natscron.migration.errors import MigrationSourceError
from natscron.migration.options import MigrationOptions
from natscron.migration.report import MigrationReport
from natscron.migration.scraper_map import load_scraper_map
from natscron_shared.contract import names
from natscron_shared.contract.messages import ScheduleEvent
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.contract.storage import Document
from natscron_shared.nats.kv_watch import current_values
from natscron_shared.nats.schedule_bucket import delete
from natscron_shared.runtime.clock import ManualClock
from natscron_shared.runtime.endpoints import Endpoints
from natscron_shared.runtime.settings import Settings
from natscron_shared.timing.schedule import next_fire_after
from tests.cli.postgres_seeds import (
    CRAWL_JOBS,
    DOMAIN_CONFIG,
    NOW,
    PARIS,
    PROFILE,
    SCHEDULES,
    SEED_003_SCHEDULES,
    create_seed_003,
    create_seed_004,
)
from tests.cli.test_cli import cli_env, run_cli
from tests.conftest import StartTicker
from tests.postgres import NewDatabase
from tests.ticker.test_ticker_service import JobQueue, adopted, leader_on_manual_clock

SCRAPER_MAP = """
domain_scan:
  scraper: cookie_scan
  params:
    domain: "{domain}"
    start_url: "https://{domain}/"
    profile: "{profile_id}"
    custom_pages: ["/privacy", "/cookies"]
    max_pages: 50
crawl:
  scraper: crawl
  params:
    seed_urls: ["{url}"]
    source: "{source_id}"
"""


async def run_migrate(
    url: str, settings: Settings, tmp_path: Path, timezone: str | None = None, **options: Any
) -> MigrationReport:
    path = tmp_path / "scrapers.yaml"
    path.write_text(SCRAPER_MAP)
    chosen = MigrationOptions(scrapers=load_scraper_map(path, None), unchecked=True, **options)
    return await migrate(url, settings, options=chosen, timezone=timezone, clock=ManualClock(NOW))


async def kv_specs(nc: Client) -> dict[str, ScheduledJob]:
    bucket = await nc.jetstream().key_value(names.KV_SCHEDULED_JOBS)
    values = await current_values(bucket)
    return {key: ScheduledJob.model_validate_json(value) for key, value in values.items()}


async def natscron_state(nc: Client, db: AsyncDatabase[Document]) -> dict[str, Any]:
    bucket = await nc.jetstream().key_value(names.KV_SCHEDULED_JOBS)
    revisions = {key: (await bucket.get(key)).revision for key in await current_values(bucket)}
    collections = sorted(await db.list_collection_names())
    return {
        "kv": revisions,
        **{name: [doc async for doc in db[name].find({}).sort("_id", 1)] for name in collections},
    }


async def source_counts(url: str, table_key: str) -> dict[str, dict[str, int]]:
    """The source's finished executions of each schedule, by status, counted in SQL."""
    query = (
        f"SELECT {table_key}::text AS key, status, count(*) AS n FROM job_executions"
        " WHERE status IN ('completed', 'failed', 'cancelled') GROUP BY 1, 2"
    )
    counts: dict[str, dict[str, int]] = {}
    async with await psycopg.AsyncConnection.connect(url) as connection:
        for key, status, n in await (await connection.execute(query.encode())).fetchall():
            counts.setdefault(key, {})[status] = n
    return counts


async def stats(db: AsyncDatabase[Document]) -> dict[str, Document]:
    return {doc["scope"]: doc async for doc in db["job_stats"].find({"period": "all"})}


async def histories(db: AsyncDatabase[Document]) -> dict[str, Document]:
    return {doc["scheduled_job_id"]: doc async for doc in db["scheduled_jobs"].find({})}


def scan_id(name: str) -> str:
    return f"scan_{SCHEDULES[name]}"


def crawl_id(name: str) -> str:
    return f"crawl_{CRAWL_JOBS[name]}"


@pytest.mark.integration
async def test_seed_003_schedules_and_executions_arrive_counted_once(
    postgres_url: str,
    settings: Settings,
    nc: Client,
    mongo_db: AsyncDatabase[Document],
    tmp_path: Path,
) -> None:
    executions = await create_seed_003(postgres_url)

    report = await run_migrate(postgres_url, settings, tmp_path, timezone=PARIS)

    assert report.layout == "postgresql-schedules" and report.notes == []
    outcomes = {d.legacy_id: d.outcome.value for d in report.definitions}
    assert outcomes == {
        str(SCHEDULES[n]): "skipped" if n == "bad" else "created"
        for n in ("daily", "weekly", "hourly", "monthly", "bad")
    }
    bad = next(d for d in report.definitions if d.legacy_id == str(SCHEDULES["bad"]))
    assert bad.message.startswith("frequency 'fortnightly' is not one of hourly, daily")
    specs = await kv_specs(nc)
    for row in SEED_003_SCHEDULES:
        if row["expected_cron"] is None:
            assert scan_id(row["name"]) not in specs
            continue
        spec = specs[scan_id(row["name"])]
        assert (spec.cron_expression, spec.timezone) == (row["expected_cron"], PARIS)
        assert spec.status == ("active" if row["enabled"] else "paused")
        assert spec.labels == {
            "origin": "legacy",
            "domain": row["domain"],
            "domain_config_id": str(DOMAIN_CONFIG),
            "profile_id": str(PROFILE),
        }
        assert (spec.scraper, spec.params) == (
            "cookie_scan",
            {
                "domain": row["domain"],
                "start_url": f"https://{row['domain']}/",
                "profile": str(PROFILE),
                "custom_pages": ["/privacy", "/cookies"],
                "max_pages": 50,
            },
        )

    runs = {r.legacy_id: r for r in report.runs}
    assert report.unlinked_runs == 1
    assert len(runs) == len(executions) - 1
    stored = {doc["job_id"]: doc async for doc in mongo_db["jobs"].find({}, {"_id": 0})}
    paris = ZoneInfo(PARIS)
    for row in executions:
        result = runs.get(str(row["execution_id"]))
        if row["schedule"] is None:
            assert result is None
            continue
        assert result is not None
        if row["status"] == "running" or row["schedule"] == "bad":
            assert result.outcome.value == "skipped"
            continue
        document = stored[f"scan_run_{row['execution_id']}"]
        assert document["scheduled_job_id"] == scan_id(row["schedule"])
        assert document["status"] == row["status"]
        started = row["started_at"].replace(tzinfo=paris).astimezone(UTC)
        assert document["started_at"] == started
        assert document["duration_ms"] == round(row["duration_seconds"] * 1000)
        assert document["migrated_from"]["source"] == "postgresql:job_executions"
        assert document["migrated_from"]["legacy_id"] == str(row["execution_id"])
        assert document["error_details"] == row.get("error_details")
        if "scan_id" in row:
            assert document["metadata"] == {"scan_id": str(row["scan_id"])}
        elif "metadata" in row:
            assert document["metadata"] == row["metadata"]

    source = await source_counts(postgres_url, "schedule_id")
    kept = await histories(mongo_db)
    all_time = await stats(mongo_db)
    migrated = ("daily", "weekly", "hourly", "monthly")
    for name in migrated:
        counts = source[str(SCHEDULES[name])]
        assert kept[scan_id(name)]["run_count"] == sum(counts.values())
        assert {s: all_time[scan_id(name)].get(s, 0) for s in counts} == counts
        assert kept[scan_id(name)]["migrated_from"]["legacy_id"] == str(SCHEDULES[name])
    assert kept[scan_id("daily")]["last_run_status"] == "completed"
    assert kept[scan_id("daily")]["consecutive_failures"] == 0
    assert kept[scan_id("hourly")]["consecutive_failures"] == 1
    total = sum(sum(source[str(SCHEDULES[name])].values()) for name in migrated)
    assert all_time["*"]["runs"] == report.runs_counted == total

    before = await natscron_state(nc, mongo_db)
    again = await run_migrate(postgres_url, settings, tmp_path, timezone=PARIS)
    assert again.runs_counted == 0
    assert {d.outcome.value for d in again.definitions} == {"unchanged", "skipped"}
    assert {r.outcome.value for r in again.runs} == {"already_migrated", "skipped"}
    assert await natscron_state(nc, mongo_db) == before

    # PostgreSQL keeps no marks: natscron's own `migrated_from` says the schedule was there.
    await delete(await nc.jetstream().key_value(names.KV_SCHEDULED_JOBS), [scan_id("weekly")])
    after_delete = await run_migrate(postgres_url, settings, tmp_path, timezone=PARIS)
    weekly = next(d for d in after_delete.definitions if d.legacy_id == str(SCHEDULES["weekly"]))
    assert weekly.outcome.value == "gone"
    assert scan_id("weekly") not in await kv_specs(nc)


@pytest.mark.integration
async def test_seed_004_jobs_and_executions_arrive_counted_once(
    postgres_url: str,
    settings: Settings,
    nc: Client,
    mongo_db: AsyncDatabase[Document],
    tmp_path: Path,
) -> None:
    await create_seed_004(postgres_url)

    report = await run_migrate(postgres_url, settings, tmp_path)

    assert report.layout == "postgresql-crawler"
    assert report.notes == [
        "no --timezone: the source's crons and its times without a zone are read in UTC"
    ]
    outcomes = {d.legacy_id: d.outcome.value for d in report.definitions}
    assert outcomes == {
        str(CRAWL_JOBS[n]): "skipped" if n == "odd" else "created"
        for n in ("every_30", "every_6h", "daily", "cron", "gone", "odd")
    }
    notes = {d.legacy_id: d.notes for d in report.definitions}
    assert notes[str(CRAWL_JOBS["every_6h"])] == [
        "was retrying (retry 1): natscron starts with a fresh run",
        "locked by a running crawl since 2026-11-25T11:57:00+00:00: that run is migrated once"
        " it finishes",
    ]
    specs = await kv_specs(nc)
    every_30 = specs[crawl_id("every_30")]
    assert every_30.interval is not None and every_30.interval.period == timedelta(minutes=30)
    assert every_30.start_at == NOW + timedelta(minutes=17)
    assert (every_30.name, every_30.max_retries, every_30.retry_backoff_seconds) == (
        "Example News",
        3,
        60,
    )
    assert (every_30.scraper, every_30.params) == (
        "crawl",
        {"seed_urls": ["https://news.example.com/"], "source": "news-example"},
    )
    assert every_30.labels == {"origin": "legacy", "source_id": "news-example"}
    every_6h = specs[crawl_id("every_6h")]
    assert every_6h.interval_period == timedelta(hours=6)
    daily = specs[crawl_id("daily")]
    assert (daily.interval_period, daily.status, daily.start_at) == (
        timedelta(days=1),
        "paused",
        None,
    )
    cron = specs[crawl_id("cron")]
    assert (cron.cron_expression, cron.timezone) == ("0 */2 * * *", "UTC")
    assert specs[crawl_id("gone")].status == "inactive"

    stored = {doc["job_id"]: doc async for doc in mongo_db["jobs"].find({}, {"_id": 0})}
    assert report.unlinked_runs == 1
    failed = next(doc for doc in stored.values() if doc.get("error_message") == "connection reset")
    assert failed["scheduled_job_id"] == crawl_id("every_30")
    assert failed["attempt"] == 2 and failed["duration_ms"] == 5000
    assert failed["error_details"] == {"stack_trace": "goroutine 1 [running]:\nmain.crawl()"}
    assert failed["metadata"] == {"execution_number": 2}
    measured = next(doc for doc in stored.values() if doc.get("properties_scraped") == 7)
    assert measured["metadata"] == {
        "execution_number": 3,
        "cpu_time_ms": 830,
        "memory_peak_mb": 64,
        "pages": 3,
    }
    assert (measured["properties_saved"], measured["scraper"]) == (7, "crawl")
    assert measured["params"] == every_30.params

    source = await source_counts(postgres_url, "job_id")
    kept = await histories(mongo_db)
    all_time = await stats(mongo_db)
    for name in ("every_30", "every_6h", "cron", "gone"):
        counts = source[str(CRAWL_JOBS[name])]
        assert kept[crawl_id(name)]["run_count"] == sum(counts.values())
        assert {s: all_time[crawl_id(name)].get(s, 0) for s in counts} == counts
    assert kept[crawl_id("cron")]["consecutive_failures"] == 2
    assert all_time[crawl_id("every_30")]["items_scraped"] == 40 + 7
    assert all_time[crawl_id("every_30")]["items_saved"] == 38 + 7
    assert all_time["*"]["runs"] == report.runs_counted == 7

    before = await natscron_state(nc, mongo_db)
    again = await run_migrate(postgres_url, settings, tmp_path)
    assert again.runs_counted == 0
    assert await natscron_state(nc, mongo_db) == before

    # A run retention deleted is neither brought back nor counted again.
    await mongo_db["jobs"].delete_one({"job_id": failed["job_id"]})
    pruned = await natscron_state(nc, mongo_db)
    await run_migrate(postgres_url, settings, tmp_path)
    assert await natscron_state(nc, mongo_db) == pruned


async def announced(js: JetStreamContext, scheduled_job_id: str) -> datetime | None:
    """The next run the ticker announced for a schedule."""
    await adopted(js, scheduled_job_id)
    subject = names.scheduled_job_event_subject(scheduled_job_id)
    message = await js.get_last_msg(names.STREAM_EVENTS, subject)
    return ScheduleEvent.model_validate_json(message.data or b"").next_run_at


@pytest.mark.integration
async def test_the_ticker_fires_migrated_schedules_when_the_source_would_have(
    postgres_database: NewDatabase,
    settings: Settings,
    nc: Client,
    start_ticker: StartTicker,
    tmp_path: Path,
) -> None:
    crawler, scanner = await postgres_database(), await postgres_database()
    await create_seed_004(crawler)
    await create_seed_003(scanner)
    await run_migrate(crawler, settings, tmp_path)
    await run_migrate(scanner, settings, tmp_path, timezone=PARIS)
    specs = await kv_specs(nc)
    paris = ZoneInfo(PARIS)
    expected = {
        crawl_id("every_30"): NOW + timedelta(minutes=17),
        crawl_id("every_6h"): NOW + timedelta(hours=2),
        crawl_id("cron"): datetime(2026, 11, 25, 14, 0, tzinfo=UTC),
        **{
            scan_id(row["name"]): row["next_run"].replace(tzinfo=paris).astimezone(UTC)
            for row in SEED_003_SCHEDULES
            if row["next_run"] is not None
        },
    }
    for scheduled_job_id, next_run in expected.items():
        assert next_fire_after(specs[scheduled_job_id], NOW) == next_run, scheduled_job_id

    _, clock = await leader_on_manual_clock(start_ticker)
    assert NOW <= clock.now() < NOW + timedelta(seconds=1)
    js = nc.jetstream()
    for scheduled_job_id in (crawl_id("every_30"), scan_id("hourly")):
        assert await announced(js, scheduled_job_id) == expected[scheduled_job_id]
    queue = JobQueue(js)
    await clock.advance(timedelta(minutes=17))
    requests = await queue.until(2, "the migrated crawl and scan fired")
    fired = {r.scheduled_job_id: r.scheduled_for for r in requests}
    assert fired == {
        crawl_id("every_30"): expected[crawl_id("every_30")],
        scan_id("hourly"): expected[scan_id("hourly")],
    }


@pytest.mark.integration
async def test_without_a_scraper_the_cli_names_the_kind_and_a_dry_run_shows_the_plan(
    postgres_url: str, endpoints: Endpoints, nc: Client, mongo_db: AsyncDatabase[Document]
) -> None:
    await create_seed_004(postgres_url)
    env = cli_env(NATSCRON_NATS_URL=endpoints.nats_url, NATSCRON_MONGO_URL=endpoints.mongo_url)

    code, _, err = await run_cli("migrate", "--from", postgres_url, "--unchecked", env=env)

    assert code == 2
    assert "no scraper is mapped for crawl (5 schedules)" in err
    assert "Nothing was written" in err
    assert await kv_specs(nc) == {}
    assert await mongo_db.list_collection_names() == []

    code, out, err = await run_cli(
        "migrate", "--from", postgres_url, "--unchecked", "--dry-run", env=env
    )
    assert (code, err) == (0, "")
    assert "source: postgresql-crawler" in out
    assert f"{CRAWL_JOBS['every_30']} [crawl]: skipped (no scraper is mapped" in out
    assert "no scraper mapped for: crawl (5)" in out
    assert "dry run: nothing was written" in out

    code, out, err = await run_cli(
        "migrate", "--from", postgres_url, "--unchecked", "--dry-run", "--scraper", "crawl",
        env=env,
    )  # fmt: skip
    assert code == 0, err
    assert f"{crawl_id('every_30')} [crawl]: created (would be created)" in out
    assert "runs would be counted in history and statistics: 7" in out
    assert await kv_specs(nc) == {}
    assert await mongo_db.list_collection_names() == []


@pytest.mark.integration
async def test_a_database_of_neither_layout_is_refused(
    postgres_url: str, settings: Settings, tmp_path: Path
) -> None:
    async with await psycopg.AsyncConnection.connect(postgres_url) as connection:
        await connection.execute("CREATE TABLE jobs (id UUID PRIMARY KEY, url TEXT)")
    with pytest.raises(MigrationSourceError, match="neither the schedules layout"):
        await run_migrate(postgres_url, settings, tmp_path)
