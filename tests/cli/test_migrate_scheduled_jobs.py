"""`natscron migrate` from seed 000's newer layout: `scheduled_jobs` (ids such as
`daily_for_sale_indy`) with their runs in `jobs` linked by `scheduled_job_id`, or by seed
001's `original_job_id`, next to a legacy template seed 000's own migration moved there.
Scrapers come from a scraper map; every count equals the source's, once."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId
from nats.aio.client import Client
from pymongo.asynchronous.database import AsyncDatabase

from natscron.migrate import migrate
from natscron.migration.errors import UnmappedKindsError
from natscron.migration.legacy_values import kept_id
from natscron.migration.options import MigrationOptions
from natscron.migration.report import MigrationReport
from natscron.migration.scraper_map import load_scraper_map
from natscron_recorder.schedule_writer import write_spec
from natscron_shared.contract import names
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.contract.storage import Document
from natscron_shared.nats.kv_watch import current_values
from natscron_shared.runtime.clock import ManualClock
from natscron_shared.runtime.mongo import DURABLE, new_client
from natscron_shared.runtime.settings import Settings
from tests.servers import Server, with_database

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
DAY = datetime(2025, 1, 13, tzinfo=UTC)
RENT_ID = "rent weekly/indy"
"""Not a natscron id (a space, a slash): it becomes a derived one."""
PLACES = ["Indianapolis, IN"]

SCRAPER_MAP = """
listing:
  scraper: http
  params:
    url: "https://listings.example/{listing_type}"
    locations: "{locations}"
    limit: "{limit}"
listing.sold:
  scraper: sold_listings
"""
PARTIAL_MAP = """
listing.for_sale:
  scraper: http
listing.sold:
  scraper: sold_listings
"""


def scheduled_jobs() -> list[Document]:
    """Seed 000's `scheduled_jobs`, run state as its scheduler left it."""
    return [
        {
            "_id": ObjectId(),
            "scheduled_job_id": "daily_for_sale_indy",
            "name": "Daily FOR_SALE - Indianapolis",
            "description": "Daily scraping of for_sale properties",
            "status": "active",
            "cron_expression": "0 13 * * *",
            "locations": PLACES,
            "listing_type": "for_sale",
            "limit": 10000,
            "run_count": 2,
            "last_run_at": DAY + timedelta(days=1, hours=13),
            "last_run_status": "completed",
            "last_run_job_id": "scheduled_daily_for_sale_indy_1736859600_a1a1a1",
            "next_run_at": DAY + timedelta(days=2, hours=13),
            "created_at": DAY - timedelta(days=30),
            "updated_at": DAY + timedelta(days=1, hours=13),
        },
        {
            "_id": ObjectId(),
            "scheduled_job_id": "sold_daily_indy",
            "name": "Daily Sold Properties - Indianapolis",
            "status": "paused",
            "cron_expression": "0 2 * * *",
            "timezone": "America/Indiana/Indianapolis",
            "locations": PLACES,
            "listing_type": "sold",
            "run_count": 3,
            "last_run_status": "failed",
            "last_run_job_id": "scheduled_sold_daily_indy_1736838000_bbbbbb",
        },
        {
            "_id": ObjectId(),
            "scheduled_job_id": "pending_daily_indy",
            "name": "Daily PENDING",
            "status": "inactive",
            "cron_expression": "0 14 * * *",
            "locations": PLACES,
            "listing_type": "PENDING",
            "run_count": 0,
        },
        {
            "_id": ObjectId(),
            "scheduled_job_id": RENT_ID,
            "name": "Weekly FOR_RENT",
            "status": "active",
            "cron_expression": "0 16 * * mon",
            "timezone": "UTC",
            "locations": PLACES,
            "listing_type": "for_rent",
            "run_count": 1,
            "last_run_status": "cancelled",
            "last_run_job_id": "scheduled_rent_1736985600_dddddd",
        },
    ]


TEMPLATE, LEGACY_RUN, ONE_TIME = ObjectId(), ObjectId(), ObjectId()


def jobs() -> list[Document]:
    """The `jobs` collection: the template seed 000's migration script moved to
    `scheduled_jobs` (and linked), its legacy run, and the runs of the newer layout."""
    return [
        {
            "_id": TEMPLATE,
            "job_id": "recurring_1736700000_a1b2c3",
            "cron_expression": "0 13 * * *",
            "locations": PLACES,
            "listing_type": "FOR_SALE",
            "limit": 10000,
            "status": "completed",
            "scheduled_job_id": "daily_for_sale_indy",
        },
        {
            "_id": LEGACY_RUN,
            "job_id": "recurring_1736773200_d4e5f6",
            "original_job_id": "recurring_1736700000_a1b2c3",
            "status": "completed",
            "locations": PLACES,
            "listing_type": "for_sale",
            "limit": 10000,
            "created_at": DAY + timedelta(hours=13),
            "started_at": DAY + timedelta(hours=13, seconds=1),
            "completed_at": DAY + timedelta(hours=13, minutes=5, seconds=23),
            "properties_scraped": 115,
            "properties_saved": 92,
        },
        run(
            "scheduled_daily_for_sale_indy_1736859600_a1a1a1",
            "completed",
            DAY + timedelta(days=1, hours=13),
            minutes=4,
            scheduled_job_id="daily_for_sale_indy",
        ),
        run(
            "scheduled_sold_daily_indy_1736751600_def456",
            "completed",
            DAY + timedelta(hours=7),
            minutes=5,
            scheduled_job_id="sold_daily_indy",
            properties_scraped=120,
            properties_saved=95,
        ),
        run(
            "triggered_sold_daily_indy_1736782200_abc123",
            "completed",
            DAY + timedelta(hours=15, minutes=30),
            minutes=2,
            original_job_id="sold_daily_indy",
            priority="immediate",
            locations=PLACES,
            listing_type="sold",
        ),
        run(
            "scheduled_sold_daily_indy_1736838000_bbbbbb",
            "failed",
            DAY + timedelta(days=1, hours=7),
            minutes=1,
            scheduled_job_id="sold_daily_indy",
            error_message="403 Forbidden",
        ),
        run(
            "scheduled_sold_daily_indy_1736924400_cccccc",
            "pending",
            DAY + timedelta(days=2, hours=7),
            scheduled_job_id="sold_daily_indy",
        ),
        {
            "_id": ObjectId(),
            "job_id": "scheduled_rent_1736985600_dddddd",
            "scheduled_job_id": RENT_ID,
            "status": "cancelled",
            "created_at": DAY + timedelta(days=3),
        },
        {"_id": ONE_TIME, "job_id": "immediate_1736000000_000000", "status": "completed"},
    ]


def run(
    job_id: str, status: str, created_at: datetime, minutes: int = 0, **fields: Any
) -> Document:
    started = created_at + timedelta(seconds=1)
    finished = {"completed_at": started + timedelta(minutes=minutes)} if minutes else {}
    return {
        "_id": ObjectId(),
        "job_id": job_id,
        "status": status,
        "created_at": created_at,
        "started_at": started,
        **finished,
        **fields,
    }


@pytest.fixture
async def source_url(mongo_server: Server) -> AsyncIterator[str]:
    url = with_database(mongo_server.url, f"seed000_{uuid.uuid4().hex[:12]}")
    client = new_client(url)
    db = client.get_default_database(write_concern=DURABLE)
    await db["scheduled_jobs"].insert_many(scheduled_jobs())
    await db["jobs"].insert_many(jobs())
    yield url
    await client.drop_database(db.name)
    await client.close()


async def run_migrate(
    url: str, settings: Settings, tmp_path: Path, scraper_map: str = SCRAPER_MAP, **options: Any
) -> MigrationReport:
    path = tmp_path / "scrapers.yaml"
    path.write_text(scraper_map)
    chosen = MigrationOptions(scrapers=load_scraper_map(path, None), unchecked=True, **options)
    return await migrate(url, settings, options=chosen, clock=ManualClock(NOW))


async def kv_specs(nc: Client) -> dict[str, ScheduledJob]:
    bucket = await nc.jetstream().key_value(names.KV_SCHEDULED_JOBS)
    values = await current_values(bucket)
    return {key: ScheduledJob.model_validate_json(value) for key, value in values.items()}


async def natscron_state(nc: Client, db: AsyncDatabase[Document]) -> dict[str, Any]:
    """Everything a migration writes on natscron's side."""
    bucket = await nc.jetstream().key_value(names.KV_SCHEDULED_JOBS)
    revisions = {key: (await bucket.get(key)).revision for key in await current_values(bucket)}
    collections = sorted(await db.list_collection_names())
    return {
        "kv": revisions,
        **{name: [doc async for doc in db[name].find({}).sort("_id", 1)] for name in collections},
    }


def outcomes(report: MigrationReport) -> dict[str, str]:
    found = {d.legacy_job_id or d.legacy_id: d.outcome.value for d in report.definitions}
    return found | {r.legacy_job_id or r.legacy_id: r.outcome.value for r in report.runs}


RENT = kept_id(RENT_ID)
EXPECTED_OUTCOMES = {
    "daily_for_sale_indy": "created",
    "sold_daily_indy": "created",
    "pending_daily_indy": "created",
    RENT_ID: "created",
    "recurring_1736700000_a1b2c3": "superseded",
    "recurring_1736773200_d4e5f6": "linked",
    "scheduled_daily_for_sale_indy_1736859600_a1a1a1": "linked",
    "scheduled_sold_daily_indy_1736751600_def456": "linked",
    "triggered_sold_daily_indy_1736782200_abc123": "linked",
    "scheduled_sold_daily_indy_1736838000_bbbbbb": "linked",
    "scheduled_sold_daily_indy_1736924400_cccccc": "skipped",
    "scheduled_rent_1736985600_dddddd": "linked",
}
LISTING_PARAMS = {"locations": PLACES, "limit": 10000}


@pytest.mark.integration
async def test_schedules_keep_their_ids_runs_link_either_way_and_counts_match_the_source(
    source_url: str,
    settings: Settings,
    nc: Client,
    mongo_db: AsyncDatabase[Document],
    tmp_path: Path,
) -> None:
    report = await run_migrate(source_url, settings, tmp_path)

    assert outcomes(report) == EXPECTED_OUTCOMES
    assert report.layout == "mongodb" and report.unlinked_runs == 1
    kinds = {d.legacy_job_id: d.kind for d in report.definitions}
    assert kinds["sold_daily_indy"] == "listing.sold" and kinds[RENT_ID] == "listing.for_rent"
    specs = await kv_specs(nc)
    assert set(specs) == {"daily_for_sale_indy", "sold_daily_indy", "pending_daily_indy", RENT}
    for_sale = specs["daily_for_sale_indy"]
    assert (for_sale.name, for_sale.cron_expression, for_sale.timezone) == (
        "Daily FOR_SALE - Indianapolis",
        "0 13 * * *",
        "UTC",
    )
    assert (for_sale.scraper, for_sale.params) == (
        "http",
        {"url": "https://listings.example/for_sale", **LISTING_PARAMS},
    )
    sold = specs["sold_daily_indy"]
    assert (sold.scraper, sold.params) == (
        "sold_listings",
        {"locations": PLACES, "listing_type": "sold"},
    )
    assert (sold.status, sold.timezone) == ("paused", "America/Indiana/Indianapolis")
    assert specs["pending_daily_indy"].status == "inactive"
    assert specs[RENT].cron_expression == "0 16 * * mon" and specs[RENT].labels == {
        "origin": "legacy"
    }

    stored = {doc["job_id"]: doc async for doc in mongo_db["jobs"].find({}, {"_id": 0})}
    legacy_run = stored[f"legacy_{LEGACY_RUN}"]
    assert legacy_run["scheduled_job_id"] == "daily_for_sale_indy"
    assert (legacy_run["scraper"], legacy_run["params"]) == (
        "http",
        {"url": "https://listings.example/for_sale", **LISTING_PARAMS},
    )
    triggered = stored["triggered_sold_daily_indy_1736782200_abc123"]
    assert (triggered["scheduled_job_id"], triggered["trigger"], triggered["priority"]) == (
        "sold_daily_indy",
        "triggered",
        "immediate",
    )
    assert triggered["migrated_from"] == {
        "source": "mongodb:jobs",
        "legacy_id": triggered["migrated_from"]["legacy_id"],
        "legacy_job_id": "triggered_sold_daily_indy_1736782200_abc123",
    }
    assert stored["scheduled_rent_1736985600_dddddd"]["scheduled_job_id"] == RENT
    failed = stored["scheduled_sold_daily_indy_1736838000_bbbbbb"]
    assert (failed["status"], failed["error_message"]) == ("failed", "403 Forbidden")

    source = {doc["scheduled_job_id"]: doc for doc in scheduled_jobs()}
    histories = {doc["scheduled_job_id"]: doc async for doc in mongo_db["scheduled_jobs"].find({})}
    all_time = {doc["scope"]: doc async for doc in mongo_db["job_stats"].find({"period": "all"})}
    for source_id, natscron_id in (
        ("daily_for_sale_indy", "daily_for_sale_indy"),
        ("sold_daily_indy", "sold_daily_indy"),
        (RENT_ID, RENT),
    ):
        kept = histories[natscron_id]
        assert kept["run_count"] == source[source_id]["run_count"]
        assert kept["last_run_status"] == source[source_id]["last_run_status"]
        assert kept["last_run_job_id"] == source[source_id]["last_run_job_id"]
        assert all_time[natscron_id]["runs"] == source[source_id]["run_count"]
        assert kept["migrated_from"]["legacy_job_id"] == source_id
    assert histories["sold_daily_indy"]["consecutive_failures"] == 1
    assert all_time["sold_daily_indy"]["failed"] == 1
    assert all_time["sold_daily_indy"]["items_scraped"] == 120
    assert "run_count" not in histories["pending_daily_indy"]
    assert all_time["*"]["runs"] == sum(doc["run_count"] for doc in scheduled_jobs())
    hours = [
        doc async for doc in mongo_db["job_stats"].find({"scope": "*", "period": {"$ne": "all"}})
    ]
    assert sum(doc["runs"] for doc in hours) == all_time["*"]["runs"]
    assert report.runs_counted == 6

    before = await natscron_state(nc, mongo_db)
    again = await run_migrate(source_url, settings, tmp_path)
    assert again.runs_counted == 0
    assert {o for k, o in outcomes(again).items() if k in specs or k in source} == {"unchanged"}
    assert await natscron_state(nc, mongo_db) == before


@pytest.mark.integration
async def test_an_unmapped_kind_writes_nothing_and_is_named(
    source_url: str,
    settings: Settings,
    nc: Client,
    mongo_db: AsyncDatabase[Document],
    tmp_path: Path,
) -> None:
    client = new_client(source_url)
    source_db = client.get_default_database()
    before = [doc async for doc in source_db["jobs"].find({}).sort("_id", 1)]

    with pytest.raises(UnmappedKindsError) as refused:
        await run_migrate(source_url, settings, tmp_path, PARTIAL_MAP)

    assert refused.value.kinds == {"listing.for_rent": 1, "listing.pending": 1}
    assert "listing.for_rent (1 schedule), listing.pending (1 schedule)" in str(refused.value)
    assert await kv_specs(nc) == {}
    assert await mongo_db.list_collection_names() == []
    assert [doc async for doc in source_db["jobs"].find({}).sort("_id", 1)] == before

    skipping = await run_migrate(source_url, settings, tmp_path, PARTIAL_MAP, skip_unmapped=True)
    found = outcomes(skipping)
    assert found["pending_daily_indy"] == found[RENT_ID] == "skipped"
    assert found["scheduled_rent_1736985600_dddddd"] == "skipped"
    assert skipping.unmapped_kinds == {"listing.for_rent": 1, "listing.pending": 1}
    assert set(await kv_specs(nc)) == {"daily_for_sale_indy", "sold_daily_indy"}
    await client.close()


@pytest.mark.integration
async def test_a_dry_run_prints_the_plan_and_writes_nothing(
    source_url: str,
    settings: Settings,
    nc: Client,
    mongo_db: AsyncDatabase[Document],
    tmp_path: Path,
) -> None:
    dry = await run_migrate(source_url, settings, tmp_path, PARTIAL_MAP, dry_run=True)

    assert dry.unmapped_kinds == {"listing.for_rent": 1, "listing.pending": 1}
    assert await kv_specs(nc) == {}
    assert await mongo_db.list_collection_names() == []
    planned = await run_migrate(source_url, settings, tmp_path, dry_run=True)
    assert outcomes(planned) == EXPECTED_OUTCOMES
    assert planned.runs_counted == 6
    assert await mongo_db.list_collection_names() == []
    real = await run_migrate(source_url, settings, tmp_path)
    assert outcomes(real) == outcomes(planned)
    assert real.runs_counted == planned.runs_counted


@pytest.mark.integration
async def test_the_recorder_mirror_and_the_migrated_history_never_clobber_each_other(
    source_url: str,
    settings: Settings,
    nc: Client,
    mongo_db: AsyncDatabase[Document],
    tmp_path: Path,
) -> None:
    """The mirror `$set`s spec fields only; migrate `$set`s history fields only."""
    mirrored_first = ScheduledJob(
        scheduled_job_id="daily_for_sale_indy",
        name="Mirrored before the migration",
        cron_expression="0 13 * * *",
        scraper="http",
    )
    await write_spec(mongo_db, mirrored_first, 1, NOW)

    await run_migrate(source_url, settings, tmp_path)
    specs = await kv_specs(nc)
    await write_spec(mongo_db, specs["sold_daily_indy"], 1, NOW)

    kept = {doc["scheduled_job_id"]: doc async for doc in mongo_db["scheduled_jobs"].find({})}
    assert kept["daily_for_sale_indy"]["name"] == "Mirrored before the migration"
    assert kept["daily_for_sale_indy"]["run_count"] == 2
    assert kept["sold_daily_indy"]["name"] == "Daily Sold Properties - Indianapolis"
    assert kept["sold_daily_indy"]["run_count"] == 3
    assert kept["sold_daily_indy"]["consecutive_failures"] == 1
