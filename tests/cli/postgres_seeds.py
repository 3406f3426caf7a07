"""Seed 003's and seed 004's PostgreSQL tables, created exactly as docs/migration.md defines
them, and filled with schedules and executions whose counts the tests compare with
natscron's after a migration.

NOW is a Wednesday, 13:00 in Paris (12:00 UTC); each schedule's `next_run`/`next_run_at`
is what its source scheduler would have computed at NOW.
"""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
PARIS = "Europe/Paris"

SEED_003_TABLES = """
CREATE TABLE scan_profiles (
    profile_id UUID PRIMARY KEY,
    name VARCHAR(255) NOT NULL
);
CREATE TABLE schedules (
    schedule_id UUID PRIMARY KEY,
    domain_config_id UUID NOT NULL,
    domain VARCHAR(255) NOT NULL,
    profile_id UUID REFERENCES scan_profiles(profile_id),
    frequency VARCHAR(50) NOT NULL,
    time_config JSONB NOT NULL,
    enabled BOOLEAN DEFAULT TRUE,
    next_run TIMESTAMP,
    last_run TIMESTAMP,
    last_status VARCHAR(50),
    created_at TIMESTAMP DEFAULT NOW(),
    updated_at TIMESTAMP DEFAULT NOW()
);
CREATE TABLE job_executions (
    execution_id UUID PRIMARY KEY,
    schedule_id UUID REFERENCES schedules(schedule_id),
    job_id VARCHAR(255) NOT NULL,
    domain VARCHAR(255) NOT NULL,
    domain_config_id UUID NOT NULL,
    status VARCHAR(50) NOT NULL,
    started_at TIMESTAMP NOT NULL,
    completed_at TIMESTAMP,
    duration_seconds FLOAT,
    scan_id UUID,
    error_message TEXT,
    error_details JSONB,
    metadata JSONB,
    created_at TIMESTAMP DEFAULT NOW()
);
"""

SEED_004_TABLES = """
CREATE TABLE jobs (
    id UUID PRIMARY KEY,
    source_id VARCHAR(255) NOT NULL,
    source_name VARCHAR(255),
    url TEXT NOT NULL,
    schedule_time VARCHAR(50),
    schedule_enabled BOOLEAN DEFAULT TRUE,
    status VARCHAR(50) NOT NULL DEFAULT 'pending',
    interval_minutes INTEGER,
    interval_type VARCHAR(20) DEFAULT 'minutes',
    next_run_at TIMESTAMP WITH TIME ZONE,
    is_paused BOOLEAN DEFAULT FALSE,
    max_retries INTEGER DEFAULT 3,
    retry_backoff_seconds INTEGER DEFAULT 60,
    current_retry_count INTEGER DEFAULT 0,
    lock_token UUID,
    lock_acquired_at TIMESTAMP WITH TIME ZONE,
    paused_at TIMESTAMP WITH TIME ZONE,
    cancelled_at TIMESTAMP WITH TIME ZONE,
    metadata JSONB DEFAULT '{}',
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    started_at TIMESTAMP WITH TIME ZONE,
    completed_at TIMESTAMP WITH TIME ZONE,
    error_message TEXT
);
CREATE TABLE job_executions (
    id UUID PRIMARY KEY,
    job_id UUID NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    execution_number INTEGER NOT NULL,
    status VARCHAR(50) NOT NULL,
    started_at TIMESTAMP WITH TIME ZONE NOT NULL,
    completed_at TIMESTAMP WITH TIME ZONE,
    duration_ms BIGINT,
    items_crawled INTEGER DEFAULT 0,
    items_indexed INTEGER DEFAULT 0,
    error_message TEXT,
    stack_trace TEXT,
    cpu_time_ms BIGINT,
    memory_peak_mb INTEGER,
    retry_attempt INTEGER DEFAULT 0,
    metadata JSONB DEFAULT '{}',
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);
"""


def naive_paris(moment: str) -> datetime:
    """A wall time in Paris as seed 003 stores it: a TIMESTAMP without a zone."""
    return datetime.fromisoformat(moment)


@dataclass(frozen=True)
class Ids:
    """Stable UUIDs by name, so a test can say which row it means."""

    values: Mapping[str, uuid.UUID]

    def __getitem__(self, name: str) -> uuid.UUID:
        return self.values[name]


SCHEDULES = Ids({name: uuid.uuid4() for name in ("daily", "weekly", "hourly", "monthly", "bad")})
DOMAIN_CONFIG = uuid.uuid4()
PROFILE = uuid.uuid4()

SEED_003_SCHEDULES: list[dict[str, Any]] = [
    {
        "name": "daily",
        "domain": "example.com",
        "frequency": "daily",
        "time_config": {"hour": 2, "minute": 0},
        "enabled": True,
        "next_run": naive_paris("2026-11-26T02:00:00"),
        "expected_cron": "0 2 * * *",
    },
    {
        "name": "weekly",
        "domain": "shop.example.org",
        "frequency": "weekly",
        "time_config": {"day": "monday", "hour": 2, "minute": 0},
        "enabled": True,
        "next_run": naive_paris("2026-11-30T02:00:00"),
        "expected_cron": "0 2 * * mon",
    },
    {
        "name": "hourly",
        "domain": "news.example.net",
        "frequency": "hourly",
        "time_config": {"minute": 15},
        "enabled": True,
        "next_run": naive_paris("2026-11-25T13:15:00"),
        "expected_cron": "15 * * * *",
    },
    {
        "name": "monthly",
        "domain": "old.example.com",
        "frequency": "monthly",
        "time_config": {"day": 1, "hour": 3, "minute": 30},
        "enabled": False,
        "next_run": None,
        "expected_cron": "30 3 1 * *",
    },
    {
        "name": "bad",
        "domain": "odd.example.com",
        "frequency": "fortnightly",
        "time_config": {"hour": 1},
        "enabled": True,
        "next_run": None,
        "expected_cron": None,
    },
]


def seed_003_executions() -> list[dict[str, Any]]:
    """(schedule name or None, status, start in Paris, seconds taken, extra columns)."""

    def execution(
        schedule: str | None, status: str, start: str, seconds: float | None, **extra: Any
    ) -> dict[str, Any]:
        started = naive_paris(start)
        return {
            "execution_id": uuid.uuid4(),
            "schedule": schedule,
            "status": status,
            "started_at": started,
            "completed_at": None if seconds is None else started + timedelta(seconds=seconds),
            "duration_seconds": seconds,
            **extra,
        }

    return [
        execution("daily", "completed", "2026-11-23T02:00:01", 45.5, scan_id=uuid.uuid4()),
        execution(
            "daily",
            "failed",
            "2026-11-24T02:00:01",
            30.0,
            error_message="timeout",
            error_details={"code": 504, "page": "/"},
        ),
        execution(
            "daily", "completed", "2026-11-25T02:00:01", 12.0, metadata={"cookies_found": 12}
        ),
        execution("weekly", "completed", "2026-11-23T02:00:02", 120.0),
        execution("hourly", "completed", "2026-11-25T11:15:00", 3.0),
        execution("hourly", "failed", "2026-11-25T12:15:00", 2.0, error_message="DNS"),
        execution("hourly", "running", "2026-11-25T13:00:00", None),
        execution("monthly", "cancelled", "2026-11-01T03:30:00", 1.0),
        execution("bad", "completed", "2026-11-20T01:00:00", 5.0),
        execution(None, "completed", "2026-11-21T10:00:00", 8.0),
    ]


async def create_seed_003(url: str) -> list[dict[str, Any]]:
    """The tables and rows; returns the executions as inserted."""
    executions = seed_003_executions()
    async with await psycopg.AsyncConnection.connect(url) as connection:
        await connection.execute(SEED_003_TABLES)
        await connection.execute(
            "INSERT INTO scan_profiles (profile_id, name) VALUES (%s, 'default')", (PROFILE,)
        )
        for row in SEED_003_SCHEDULES:
            await connection.execute(
                "INSERT INTO schedules (schedule_id, domain_config_id, domain, profile_id,"
                " frequency, time_config, enabled, next_run) VALUES (%s, %s, %s, %s, %s, %s, %s,"
                " %s)",
                (
                    SCHEDULES[row["name"]],
                    DOMAIN_CONFIG,
                    row["domain"],
                    PROFILE,
                    row["frequency"],
                    Jsonb(row["time_config"]),
                    row["enabled"],
                    row["next_run"],
                ),
            )
        domains = {row["name"]: row["domain"] for row in SEED_003_SCHEDULES}
        for index, row in enumerate(executions):
            schedule = row["schedule"]
            await connection.execute(
                "INSERT INTO job_executions (execution_id, schedule_id, job_id, domain,"
                " domain_config_id, status, started_at, completed_at, duration_seconds, scan_id,"
                " error_message, error_details, metadata) VALUES (%s, %s, %s, %s, %s, %s, %s,"
                " %s, %s, %s, %s, %s, %s)",
                (
                    row["execution_id"],
                    None if schedule is None else SCHEDULES[schedule],
                    f"scan_{index}",
                    domains.get(schedule or "", "adhoc.example.com"),
                    DOMAIN_CONFIG,
                    row["status"],
                    row["started_at"],
                    row["completed_at"],
                    row["duration_seconds"],
                    row.get("scan_id"),
                    row.get("error_message"),
                    _json(row.get("error_details")),
                    _json(row.get("metadata")),
                ),
            )
    return executions


CRAWL_JOBS = Ids(
    {
        name: uuid.uuid4()
        for name in ("every_30", "every_6h", "daily", "cron", "gone", "once", "odd")
    }
)

SEED_004_JOBS: list[dict[str, Any]] = [
    {
        "name": "every_30",
        "url": "https://news.example.com/",
        "source_id": "news-example",
        "source_name": "Example News",
        "interval_minutes": 30,
        "interval_type": "minutes",
        "next_run_at": NOW + timedelta(minutes=17),
        "status": "scheduled",
    },
    {
        "name": "every_6h",
        "url": "https://blog.example.org/",
        "source_id": "blog",
        "interval_minutes": 6,
        "interval_type": "hours",
        "next_run_at": NOW + timedelta(hours=2),
        "status": "running",
        "lock_token": uuid.uuid4(),
        "lock_acquired_at": NOW - timedelta(minutes=3),
        "current_retry_count": 1,
    },
    {
        "name": "daily",
        "url": "https://archive.example.net/",
        "source_id": "archive",
        "interval_minutes": 1,
        "interval_type": "days",
        "next_run_at": None,
        "is_paused": True,
        "status": "paused",
    },
    {
        "name": "cron",
        "url": "https://legacy.example.com/",
        "source_id": "legacy",
        "schedule_time": "0 */2 * * *",
        "next_run_at": datetime(2026, 11, 25, 14, 0, tzinfo=UTC),
        "status": "scheduled",
    },
    {
        "name": "gone",
        "url": "https://gone.example.com/",
        "source_id": "gone",
        "interval_minutes": 60,
        "interval_type": "minutes",
        "status": "cancelled",
    },
    {
        "name": "once",
        "url": "https://once.example.com/",
        "source_id": "once",
        "status": "completed",
    },
    {
        "name": "odd",
        "url": "https://odd.example.com/",
        "source_id": "odd",
        "interval_minutes": 2,
        "interval_type": "weeks",
        "status": "scheduled",
    },
]


def seed_004_executions() -> list[dict[str, Any]]:
    def execution(
        job: str, number: int, status: str, start: datetime, seconds: float | None, **extra: Any
    ) -> dict[str, Any]:
        done = None if seconds is None else start + timedelta(seconds=seconds)
        return {
            "id": uuid.uuid4(),
            "job": job,
            "execution_number": number,
            "status": status,
            "started_at": start,
            "completed_at": done,
            "duration_ms": None if seconds is None else round(seconds * 1000),
            **extra,
        }

    day = datetime(2026, 11, 24, tzinfo=UTC)
    return [
        execution("every_30", 1, "completed", day, 20, items_crawled=40, items_indexed=38),
        execution(
            "every_30",
            2,
            "failed",
            day + timedelta(minutes=30),
            5,
            error_message="connection reset",
            stack_trace="goroutine 1 [running]:\nmain.crawl()",
            retry_attempt=1,
        ),
        execution(
            "every_30",
            3,
            "completed",
            day + timedelta(hours=1),
            12.5,
            items_crawled=7,
            items_indexed=7,
            cpu_time_ms=830,
            memory_peak_mb=64,
            metadata={"pages": 3},
        ),
        execution("every_6h", 1, "completed", day, 600, items_crawled=300, items_indexed=290),
        execution("every_6h", 2, "running", NOW - timedelta(minutes=3), None),
        execution("cron", 1, "failed", day + timedelta(hours=10), 1, error_message="404"),
        execution("cron", 2, "failed", day + timedelta(hours=12), 1, error_message="404"),
        execution("gone", 1, "cancelled", day, 0.5),
        execution("once", 1, "completed", day, 3, items_crawled=1),
        execution("odd", 1, "completed", day, 3),
    ]


async def create_seed_004(url: str) -> list[dict[str, Any]]:
    executions = seed_004_executions()
    async with await psycopg.AsyncConnection.connect(url) as connection:
        await connection.execute(SEED_004_TABLES)
        for row in SEED_004_JOBS:
            columns = {k: v for k, v in row.items() if k != "name"}
            columns["id"] = CRAWL_JOBS[row["name"]]
            await _insert(connection, "jobs", columns)
        for row in executions:
            columns = {k: v for k, v in row.items() if k != "job"}
            columns["job_id"] = CRAWL_JOBS[row["job"]]
            if "metadata" in columns:
                columns["metadata"] = Jsonb(columns["metadata"])
            await _insert(connection, "job_executions", columns)
    return executions


async def _insert(
    connection: psycopg.AsyncConnection[Any], table: str, columns: dict[str, Any]
) -> None:
    names = ", ".join(columns)
    marks = ", ".join(["%s"] * len(columns))
    query = f"INSERT INTO {table} ({names}) VALUES ({marks})"
    await connection.execute(query.encode(), tuple(columns.values()))


def _json(value: object) -> Jsonb | None:
    return None if value is None else Jsonb(value)
