"""`natscron migrate`: a legacy `jobs` collection in seed 000's older shape (recurring
definitions with `cron_expression` mixed with their runs) moved into natscron, and counted
in its history and statistics, on real servers."""

import json
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.kv import KeyValue
from pydantic import BaseModel, ConfigDict, Field
from pymongo.asynchronous.database import AsyncDatabase

from natscron.migrate import (
    MigrationInterruptedError,
    MigrationSourceError,
    check_not_natscron_own,
    legacy_database_name,
    migrate,
)
from natscron.migration.definitions import legacy_definition
from natscron.migration.legacy_values import derived_id
from natscron.migration.options import MigrationOptions
from natscron.migration.plan import Planned, plan
from natscron.migration.report import MigrationReport
from natscron.migration.scraper_map import ScraperMap
from natscron_runner.scrapers.base import ScrapeContext, parse_params
from natscron_runner.scrapers.registry import ScraperRegistry
from natscron_shared.contract import names
from natscron_shared.contract.catalogue import NoRunnersError
from natscron_shared.contract.enums import JobStatus
from natscron_shared.contract.messages import JobEvent, ScrapedItem
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.contract.storage import Document
from natscron_shared.nats.kv_watch import current_values
from natscron_shared.nats.schedule_bucket import delete, pause
from natscron_shared.runtime.clock import ManualClock
from natscron_shared.runtime.mongo import DURABLE, new_client
from natscron_shared.runtime.settings import Settings
from tests.conftest import StartRunner, StartTicker
from tests.servers import Server, with_database
from tests.waiting import eventually

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
DAY = datetime(2025, 1, 13, tzinfo=UTC)
FOR_SALE, FOR_RENT, BAD_CRON, AUCTION, EXTRA_FIELD = (ObjectId() for _ in range(5))


def for_sale_definition() -> Document:
    """Seed 000's "FOR_SALE - Daily at 1 PM UTC": no time zone, run state kept on it."""
    return {
        "_id": FOR_SALE,
        "job_id": "recurring_1736700000_a1b2c3",
        "cron_expression": "0 13 * * *",
        "locations": ["Indianapolis, IN"],
        "listing_type": "FOR_SALE",
        "limit": 10000,
        "priority": "normal",
        "status": "completed",
        "created_at": DAY - timedelta(days=30),
        "last_run_at": DAY + timedelta(hours=13),
        "properties_scraped": 115,
    }


def legacy_definitions() -> list[Document]:
    return [
        for_sale_definition(),
        {
            "_id": FOR_RENT,
            "job_id": "recurring_1736710000_b2c3d4",
            "name": "Daily FOR_RENT - Indianapolis",
            "cron_expression": "0 16 * * *",
            "timezone": "America/Indiana/Indianapolis",
            "locations": "Indianapolis, IN",
            "listing_type": "for_rent",
            "limit": 500,
            "priority": "immediate",
            "enabled": False,
            "max_retries": 2,
            "timeout_seconds": 600,
        },
        {"_id": BAD_CRON, "job_id": "recurring_3", "cron_expression": "0 25 * * *"},
        {"_id": AUCTION, "cron_expression": "0 14 * * *", "listing_type": "auction"},
        {"_id": EXTRA_FIELD, "cron_expression": "0 15 * * *", "proxy_pool": "eu"},
    ]


RUN_DONE, RUN_FAILED, RUN_CANCELLED, RUN_RUNNING, RUN_ODD, RUN_OF_BAD, RUN_ORPHAN, ONE_TIME = (
    ObjectId() for _ in range(8)
)


def legacy_runs() -> list[Document]:
    started = DAY + timedelta(hours=13, seconds=1)
    return [
        {
            "_id": RUN_DONE,
            "job_id": "recurring_1736773200_d4e5f6",
            "original_job_id": "recurring_1736700000_a1b2c3",
            "status": "completed",
            "priority": "normal",
            "locations": ["Indianapolis, IN"],
            "listing_type": "for_sale",
            "limit": 10000,
            "created_at": DAY + timedelta(hours=13),
            "started_at": started,
            "completed_at": started + timedelta(minutes=5, seconds=22),
            "properties_scraped": 115,
            "properties_saved": 92,
        },
        {
            "_id": RUN_FAILED,
            "job_id": "immediate_1736841234_abc123",
            "original_job_id": "recurring_1736700000_a1b2c3",
            "status": "failed",
            "priority": "immediate",
            "created_at": "2025-01-14T15:30:00Z",
            "started_at": "2025-01-14T15:30:01Z",
            "completed_at": "2025-01-14T15:30:03.5Z",
            "error_message": "403 Forbidden",
        },
        {
            "_id": RUN_CANCELLED,
            "job_id": "recurring_1736870400_e5f6a7",
            "original_job_id": FOR_RENT,
            "status": "cancelled",
            "created_at": DAY + timedelta(days=1, hours=16),
        },
        {
            "_id": RUN_RUNNING,
            "job_id": "recurring_1736960400_f6a7b8",
            "original_job_id": "recurring_1736700000_a1b2c3",
            "status": "running",
            "created_at": DAY + timedelta(days=2, hours=13),
        },
        {
            "_id": RUN_ODD,
            "original_job_id": "recurring_1736700000_a1b2c3",
            "status": "exploded",
            "created_at": DAY,
        },
        {"_id": RUN_OF_BAD, "original_job_id": "recurring_3", "status": "completed"},
        {"_id": RUN_ORPHAN, "original_job_id": "recurring_gone", "status": "completed"},
        {"_id": ONE_TIME, "job_id": "immediate_1736000000_000000", "status": "completed"},
    ]


@pytest.fixture
async def legacy_url(mongo_server: Server) -> AsyncIterator[str]:
    url = with_database(mongo_server.url, f"legacy_{uuid.uuid4().hex[:12]}")
    yield url
    client = new_client(url)
    await client.drop_database(client.get_default_database().name)
    await client.close()


@pytest.fixture
async def legacy_db(legacy_url: str) -> AsyncIterator[AsyncDatabase[Document]]:
    client = new_client(legacy_url)
    db = client.get_default_database(write_concern=DURABLE)
    await db["jobs"].insert_many([*legacy_definitions(), *legacy_runs()])
    yield db
    await client.close()


async def run_migrate(
    legacy_url: str, settings: Settings, unchecked: bool = True, **options: Any
) -> MigrationReport:
    """With every kind run by the `listings` scraper (`--scraper listings`)."""
    chosen = MigrationOptions(scrapers=ScraperMap(fallback="listings"), unchecked=unchecked)
    return await migrate(
        legacy_url,
        settings,
        options=replace(chosen, **options),
        clock=ManualClock(NOW),
    )


async def kv_specs(nc: Client) -> dict[str, ScheduledJob]:
    bucket = await nc.jetstream().key_value(names.KV_SCHEDULED_JOBS)
    values = await current_values(bucket)
    return {key: ScheduledJob.model_validate_json(value) for key, value in values.items()}


async def kv_bucket(nc: Client) -> KeyValue:
    return await nc.jetstream().key_value(names.KV_SCHEDULED_JOBS)


def outcomes(report: MigrationReport) -> dict[str, str]:
    """legacy _id -> outcome, definitions and runs alike."""
    found = {d.legacy_id: d.outcome.value for d in report.definitions}
    return found | {r.legacy_id: r.outcome.value for r in report.runs}


def by_legacy_id(report: MigrationReport) -> dict[str, str]:
    """legacy _id -> message, definitions and runs alike."""
    found = {d.legacy_id: d.message for d in report.definitions}
    return found | {r.legacy_id: r.message for r in report.runs}


async def natscron_jobs(mongo_db: AsyncDatabase[Document]) -> dict[str, Document]:
    return {doc["job_id"]: doc async for doc in mongo_db["jobs"].find({}, {"_id": 0})}


EXPECTED_SPECS = {
    f"legacy_{FOR_SALE}": ScheduledJob(
        scheduled_job_id=f"legacy_{FOR_SALE}",
        name="FOR_SALE Indianapolis, IN",
        cron_expression="0 13 * * *",
        timezone="UTC",
        scraper="listings",
        params={"locations": ["Indianapolis, IN"], "listing_type": "for_sale", "limit": 10000},
        labels={"origin": "legacy"},
    ),
    f"legacy_{FOR_RENT}": ScheduledJob(
        scheduled_job_id=f"legacy_{FOR_RENT}",
        name="Daily FOR_RENT - Indianapolis",
        status="paused",
        paused_reason="disabled in the legacy system",
        cron_expression="0 16 * * *",
        timezone="America/Indiana/Indianapolis",
        scraper="listings",
        params={"locations": ["Indianapolis, IN"], "listing_type": "for_rent", "limit": 500},
        priority="immediate",
        max_retries=2,
        timeout_seconds=600,
        labels={"origin": "legacy"},
    ),
}


def expected_jobs() -> dict[str, Document]:
    """The natscron `jobs` documents of the three finished, linked runs."""
    for_sale_params = EXPECTED_SPECS[f"legacy_{FOR_SALE}"].params
    common: Document = {
        "scheduled_for": None,
        "retry_of": None,
        "attempt": 1,
        "progress": 2**62,
        "updated_at": NOW,
        "runner_id": None,
        "item_batches": None,
        "error_type": None,
        "cancelled_by": None,
        "saved_batches": [],
        "scraper": "listings",
        "error_details": None,
        "metadata": None,
    }
    started = DAY + timedelta(hours=13, seconds=1)
    return {
        f"legacy_{RUN_DONE}": common
        | {
            "job_id": f"legacy_{RUN_DONE}",
            "scheduled_job_id": f"legacy_{FOR_SALE}",
            "trigger": "scheduled",
            "priority": "normal",
            "created_at": DAY + timedelta(hours=13),
            "params": for_sale_params,
            "status": "completed",
            "started_at": started,
            "completed_at": started + timedelta(minutes=5, seconds=22),
            "duration_ms": 322_000,
            "properties_scraped": 115,
            "properties_saved": 92,
            "error_message": None,
            "migrated_from": {
                "source": "mongodb:jobs",
                "legacy_id": str(RUN_DONE),
                "legacy_job_id": "recurring_1736773200_d4e5f6",
            },
        },
        f"legacy_{RUN_FAILED}": common
        | {
            "job_id": f"legacy_{RUN_FAILED}",
            "scheduled_job_id": f"legacy_{FOR_SALE}",
            "trigger": "triggered",
            "priority": "immediate",
            "created_at": datetime(2025, 1, 14, 15, 30, tzinfo=UTC),
            "params": for_sale_params,
            "status": "failed",
            "started_at": datetime(2025, 1, 14, 15, 30, 1, tzinfo=UTC),
            "completed_at": datetime(2025, 1, 14, 15, 30, 3, 500_000, tzinfo=UTC),
            "duration_ms": 2500,
            "properties_scraped": None,
            "properties_saved": 0,
            "error_message": "403 Forbidden",
            "migrated_from": {
                "source": "mongodb:jobs",
                "legacy_id": str(RUN_FAILED),
                "legacy_job_id": "immediate_1736841234_abc123",
            },
        },
        f"legacy_{RUN_CANCELLED}": common
        | {
            "job_id": f"legacy_{RUN_CANCELLED}",
            "scheduled_job_id": f"legacy_{FOR_RENT}",
            "trigger": "scheduled",
            "priority": "immediate",
            "created_at": DAY + timedelta(days=1, hours=16),
            "params": EXPECTED_SPECS[f"legacy_{FOR_RENT}"].params,
            "status": "cancelled",
            "started_at": None,
            "completed_at": None,
            "duration_ms": None,
            "properties_scraped": None,
            "properties_saved": 0,
            "error_message": None,
            "migrated_from": {
                "source": "mongodb:jobs",
                "legacy_id": str(RUN_CANCELLED),
                "legacy_job_id": "recurring_1736870400_e5f6a7",
            },
        },
    }


EXPECTED_HISTORY = {
    f"legacy_{FOR_SALE}": {
        "run_count": 2,
        "last_run_at": datetime(2025, 1, 14, 15, 30, 3, 500_000, tzinfo=UTC),
        "last_run_status": "failed",
        "last_run_job_id": f"legacy_{RUN_FAILED}",
        "consecutive_failures": 1,
    },
    f"legacy_{FOR_RENT}": {
        "run_count": 1,
        "last_run_at": DAY + timedelta(days=1, hours=16),
        "last_run_status": "cancelled",
        "last_run_job_id": f"legacy_{RUN_CANCELLED}",
        "consecutive_failures": 0,
    },
}
"""The completed and the failed run of FOR_SALE (the failure the later), the cancelled
run of FOR_RENT (finished when created: it has no other time)."""
EXPECTED_STATS = {
    f"legacy_{FOR_SALE}": {"runs": 2, "completed": 1, "failed": 1, "duration_count": 2},
    f"legacy_{FOR_RENT}": {"runs": 1, "cancelled": 1},
    "*": {"runs": 3, "completed": 1, "failed": 1, "cancelled": 1, "duration_count": 2},
}
COUNTERS = ("runs", "completed", "failed", "cancelled", "duration_count")


async def history(mongo_db: AsyncDatabase[Document]) -> dict[str, Document]:
    fields = {
        "_id": 0,
        "scheduled_job_id": 1,
        **dict.fromkeys(EXPECTED_HISTORY[f"legacy_{FOR_SALE}"], 1),
    }
    return {
        doc.pop("scheduled_job_id"): doc
        async for doc in mongo_db["scheduled_jobs"].find({}, fields)
    }


async def all_time_stats(mongo_db: AsyncDatabase[Document]) -> dict[str, Document]:
    """The all-time counters of each scope, those that are not 0."""
    return {
        doc["scope"]: {name: doc[name] for name in COUNTERS if doc.get(name)}
        async for doc in mongo_db["job_stats"].find({"period": "all"})
    }


async def stats_documents(mongo_db: AsyncDatabase[Document]) -> list[Document]:
    return [doc async for doc in mongo_db["job_stats"].find({}).sort("_id", 1)]


FIRST_OUTCOMES = {
    str(FOR_SALE): "created",
    str(FOR_RENT): "created",
    str(BAD_CRON): "skipped",
    str(AUCTION): "skipped",
    str(EXTRA_FIELD): "skipped",
    str(RUN_DONE): "linked",
    str(RUN_FAILED): "linked",
    str(RUN_CANCELLED): "linked",
    str(RUN_RUNNING): "skipped",
    str(RUN_ODD): "skipped",
    str(RUN_OF_BAD): "skipped",
    str(RUN_ORPHAN): "skipped",
}


@pytest.mark.integration
async def test_migrates_definitions_and_runs_field_by_field_and_a_rerun_adds_nothing(
    legacy_url: str,
    legacy_db: AsyncDatabase[Document],
    settings: Settings,
    nc: Client,
    mongo_db: AsyncDatabase[Document],
) -> None:
    report = await run_migrate(legacy_url, settings)

    assert not report.dry_run and report.legacy_database == legacy_db.name
    assert outcomes(report) == FIRST_OUTCOMES
    assert report.definition_counts == {
        "found": 5,
        "created": 2,
        "unchanged": 0,
        "updated": 0,
        "conflict": 0,
        "gone": 0,
        "superseded": 0,
        "skipped": 3,
    }
    assert report.run_counts["linked"] == 3 and report.run_counts["skipped"] == 4
    assert report.unlinked_runs == 1
    assert json.loads(report.model_dump_json())["run_counts"]["linked"] == 3
    messages = by_legacy_id(report)
    assert messages[str(BAD_CRON)].startswith("cron_expression: ")
    assert "25" in messages[str(BAD_CRON)]
    assert messages[str(AUCTION)] == (
        "listing_type 'auction' is not one of for_sale, for_rent, sold, pending;"
        " natscron cannot map it"
    )
    assert messages[str(EXTRA_FIELD)] == (
        "unknown legacy field(s) 'proxy_pool': natscron has nothing that would act on them"
    )
    assert "has not finished in the legacy system" in messages[str(RUN_RUNNING)]
    assert messages[str(RUN_ODD)].startswith("status 'exploded' is not one of completed")
    assert messages[str(RUN_OF_BAD)].startswith(f"its definition {BAD_CRON} was skipped: ")
    assert messages[str(RUN_ORPHAN)] == "'recurring_gone' names no schedule in the source"
    notes = {d.legacy_id: d.notes for d in report.definitions}
    assert notes[str(FOR_SALE)] == ["no timezone in the legacy definition: UTC assumed"]
    assert notes[str(FOR_RENT)] == ["enabled is false: the schedule is paused"]

    assert await kv_specs(nc) == EXPECTED_SPECS
    assert await natscron_jobs(mongo_db) == expected_jobs()
    assert report.runs_counted == 3
    assert await history(mongo_db) == EXPECTED_HISTORY
    assert await all_time_stats(mongo_db) == EXPECTED_STATS
    stats_before = await stats_documents(mongo_db)

    markers = {
        str(doc["_id"]): doc.get("migrated_to_natscron") async for doc in legacy_db["jobs"].find({})
    }
    assert markers[str(FOR_SALE)] == {"at": NOW, "scheduled_job_id": f"legacy_{FOR_SALE}"}
    assert markers[str(RUN_CANCELLED)] == {
        "at": NOW,
        "job_id": f"legacy_{RUN_CANCELLED}",
        "scheduled_job_id": f"legacy_{FOR_RENT}",
    }
    unmarked = {key for key, marker in markers.items() if marker is None}
    assert unmarked == {
        str(i)
        for i in (BAD_CRON, AUCTION, EXTRA_FIELD, RUN_RUNNING, RUN_ODD, RUN_OF_BAD, RUN_ORPHAN)
    } | {str(ONE_TIME)}

    revisions = {k: (await (await kv_bucket(nc)).get(k)).revision for k in EXPECTED_SPECS}
    again = await run_migrate(legacy_url, settings)
    assert outcomes(again) == FIRST_OUTCOMES | {
        str(FOR_SALE): "unchanged",
        str(FOR_RENT): "unchanged",
        str(RUN_DONE): "already_migrated",
        str(RUN_FAILED): "already_migrated",
        str(RUN_CANCELLED): "already_migrated",
    }
    assert again.definition_counts["created"] == 0 and again.run_counts["linked"] == 0
    assert {k: (await (await kv_bucket(nc)).get(k)).revision for k in EXPECTED_SPECS} == revisions
    assert await natscron_jobs(mongo_db) == expected_jobs()
    assert await mongo_db["jobs"].count_documents({}) == 3
    assert again.runs_counted == 0
    assert await history(mongo_db) == EXPECTED_HISTORY
    assert await stats_documents(mongo_db) == stats_before

    # As if an earlier run stopped after writing natscron's side but before marking.
    await legacy_db["jobs"].update_many(
        {"_id": {"$in": [FOR_SALE, RUN_DONE]}}, {"$unset": {"migrated_to_natscron": ""}}
    )
    done = f"legacy_{RUN_DONE}"
    await mongo_db["jobs"].update_one({"job_id": done}, {"$set": {"properties_saved": 93}})
    resumed = await run_migrate(legacy_url, settings)
    assert outcomes(resumed)[str(FOR_SALE)] == "unchanged"
    assert outcomes(resumed)[str(RUN_DONE)] == "already_migrated"
    assert by_legacy_id(resumed)[str(RUN_DONE)] == "migrated and counted before"
    stored = expected_jobs()
    stored[done]["properties_saved"] = 93  # a stored document is never rewritten
    assert await natscron_jobs(mongo_db) == stored
    remarked = await legacy_db["jobs"].find_one({"_id": RUN_DONE})
    assert remarked is not None
    assert remarked["migrated_to_natscron"]["job_id"] == done
    assert resumed.runs_counted == 0
    assert await history(mongo_db) == EXPECTED_HISTORY

    # A run retention deleted is not brought back, nor counted again, once unmarked.
    await mongo_db["jobs"].delete_one({"job_id": done})
    await legacy_db["jobs"].update_one({"_id": RUN_DONE}, {"$unset": {"migrated_to_natscron": ""}})
    await run_migrate(legacy_url, settings)
    assert done not in await natscron_jobs(mongo_db)
    assert await history(mongo_db) == EXPECTED_HISTORY
    assert await stats_documents(mongo_db) == stats_before


@pytest.mark.integration
async def test_a_dry_run_writes_nothing_and_reports_what_a_real_run_does(
    legacy_url: str,
    legacy_db: AsyncDatabase[Document],
    settings: Settings,
    nc: Client,
    mongo_db: AsyncDatabase[Document],
) -> None:
    before = [doc async for doc in legacy_db["jobs"].find({}).sort("_id", 1)]

    dry = await run_migrate(legacy_url, settings, dry_run=True)

    assert dry.dry_run
    assert [doc async for doc in legacy_db["jobs"].find({}).sort("_id", 1)] == before
    assert await kv_specs(nc) == {}
    assert "jobs" not in await mongo_db.list_collection_names()
    real = await run_migrate(legacy_url, settings)
    assert outcomes(dry) == outcomes(real) == FIRST_OUTCOMES
    assert dry.definition_counts == real.definition_counts
    assert dry.run_counts == real.run_counts


@pytest.mark.integration
async def test_a_spec_changed_or_deleted_in_natscron_is_left_unless_forced(
    legacy_url: str, legacy_db: AsyncDatabase[Document], settings: Settings, nc: Client
) -> None:
    await run_migrate(legacy_url, settings)
    bucket = await kv_bucket(nc)
    for_sale, for_rent = f"legacy_{FOR_SALE}", f"legacy_{FOR_RENT}"
    await pause(bucket, [for_sale], "site down", NOW)
    await delete(bucket, [for_rent])

    kept = await run_migrate(legacy_url, settings)
    assert outcomes(kept)[str(FOR_SALE)] == "conflict"
    assert by_legacy_id(kept)[str(FOR_SALE)] == (
        "KV scheduled_jobs holds a different spec (fields differ: paused_at, paused_reason,"
        " status); left as it is (force replaces it)"
    )
    assert outcomes(kept)[str(FOR_RENT)] == "gone"
    assert "no longer in KV scheduled_jobs" in by_legacy_id(kept)[str(FOR_RENT)]
    specs = await kv_specs(nc)
    assert specs[for_sale].paused_reason == "site down" and for_rent not in specs

    forced = await run_migrate(legacy_url, settings, force=True)
    assert outcomes(forced)[str(FOR_SALE)] == "updated"
    assert outcomes(forced)[str(FOR_RENT)] == "created"
    assert await kv_specs(nc) == EXPECTED_SPECS


class ListingsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    locations: list[str] = Field(min_length=1)
    listing_type: str
    limit: int = Field(ge=1)


class ListingsScraper:
    """Stands in for the legacy app's property-listings scrape."""

    name = "listings"
    params_model = ListingsParams

    async def scrape(
        self, params: dict[str, Any], context: ScrapeContext
    ) -> AsyncIterator[ScrapedItem]:
        parsed = parse_params(self.name, ListingsParams, params)
        for place in parsed.locations:
            yield ScrapedItem(key=f"{context.job_id}-{place}", data={"type": parsed.listing_type})


@pytest.mark.integration
async def test_a_migrated_schedule_is_checked_against_the_runners_and_fires(
    legacy_url: str,
    settings: Settings,
    nc: Client,
    start_runner: StartRunner,
    start_ticker: StartTicker,
) -> None:
    client = new_client(legacy_url)
    every_second, refused = ObjectId(), ObjectId()
    await client.get_default_database()["jobs"].insert_many(
        [
            for_sale_definition() | {"_id": every_second, "cron_expression": "* * * * * *"},
            {"_id": refused, "cron_expression": "0 9 * * *", "params": {"radius_miles": 5}},
        ]
    )
    await client.close()
    with pytest.raises(NoRunnersError, match="migrate with --unchecked"):
        await run_migrate(legacy_url, settings, unchecked=False)
    assert await kv_specs(nc) == {}

    events: list[JobEvent] = []

    async def on_event(msg: Msg) -> None:
        events.append(JobEvent.model_validate_json(msg.data))

    await nc.jetstream().subscribe(
        f"{names.JOBS_EVENTS_PREFIX}.>", cb=on_event, ordered_consumer=True
    )
    await start_runner(scrapers=ScraperRegistry({"listings": ListingsScraper()}))
    await start_ticker()
    report = await run_migrate(legacy_url, settings, unchecked=False)

    assert outcomes(report) == {str(every_second): "created", str(refused): "skipped"}
    assert by_legacy_id(report)[str(refused)].startswith(
        "runners refuse it: params.radius_miles: unknown field"
    )

    def completed() -> Iterator[JobEvent]:
        return (e for e in events if e.status is JobStatus.COMPLETED)

    async def first_completed() -> JobEvent | None:
        return next(completed(), None)

    event = await eventually(first_completed, what="a run of the migrated schedule completed")
    assert event is not None
    assert event.job.scheduled_job_id == f"legacy_{every_second}"
    assert event.job.scraper == "listings"
    assert event.job.params == EXPECTED_SPECS[f"legacy_{FOR_SALE}"].params
    assert event.properties_scraped == 1


@pytest.mark.integration
async def test_a_time_zone_for_a_mongodb_source_is_refused(
    legacy_url: str, settings: Settings
) -> None:
    with pytest.raises(MigrationSourceError, match="--timezone is for PostgreSQL sources"):
        await migrate(legacy_url, settings, timezone="Europe/Paris")


@pytest.mark.integration
async def test_an_unreachable_legacy_database_is_a_sentence(settings: Settings) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(MigrationInterruptedError, match="the migration stopped: ServerSelection"):
        await run_migrate(f"mongodb://127.0.0.1:{port}/legacy", settings)


def test_the_legacy_database_is_named_and_is_not_natscron_own() -> None:
    assert legacy_database_name("mongodb://legacy-host:27017/realestate", None) == "realestate"
    assert legacy_database_name("mongodb://legacy-host:27017", "old") == "old"
    with pytest.raises(MigrationSourceError, match="names no database"):
        legacy_database_name("mongodb://legacy-host:27017", None)
    check_not_natscron_own("mongodb://h:1/app", "app", "mongodb://h:1/natscron")
    check_not_natscron_own("mongodb://old:1/natscron", "natscron", "mongodb://h:1/natscron")
    with pytest.raises(MigrationSourceError, match="is natscron's own database"):
        check_not_natscron_own("mongodb://h:1/natscron", "natscron", "mongodb://h:1")
    with pytest.raises(MigrationSourceError, match="the legacy URL is not a MongoDB URL"):
        legacy_database_name("postgres://user:secret@h/db", None)


def planned(document: Document, scraper: str) -> Planned:
    (decided,) = plan([legacy_definition(document)], ScraperMap(fallback=scraper), None)
    return decided


def test_legacy_statuses_and_ids_convert_as_documented() -> None:
    paused = planned(for_sale_definition() | {"status": "paused"}, "listings").spec
    assert paused is not None
    assert (paused.status, paused.paused_reason) == ("paused", "paused in the legacy system")
    inactive = planned(for_sale_definition() | {"status": "INACTIVE", "enabled": False}, "x")
    assert inactive.spec is not None
    assert inactive.spec.status == "inactive" and inactive.spec.scraper == "x"
    own = planned(for_sale_definition() | {"scraper": "homes", "params": {"radius": 5}}, "x")
    assert own.spec is not None
    assert own.spec.scraper == "homes" and own.spec.params["radius"] == 5
    refused = planned(for_sale_definition() | {"enabled": "no"}, "x")
    assert refused.problem == "enabled 'no' is neither true nor false"
    high = planned(for_sale_definition() | {"priority": "high"}, "x")
    assert high.problem is not None
    assert high.problem.startswith("priority 'high' is not one of immediate, normal")
    assert derived_id({"_id": "sold_daily_indy"}) == "legacy_sold_daily_indy"
    odd = derived_id({"_id": "sold daily/indy"})
    assert odd == derived_id({"_id": "sold daily/indy"}) and len(odd) == len("legacy_") + 24
