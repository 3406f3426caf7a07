"""`natscron migrate --from URL`: the schedules of the systems natscron replaces become
natscron schedules in KV `scheduled_jobs`, their runs natscron `jobs` documents counted in
the schedules' history and statistics.

The source is MongoDB (seed 000's `scheduled_jobs` and `jobs`, and the legacy layout of
templates mixed with runs) or PostgreSQL (seed 003's `schedules`, seed 004's crawler
`jobs`), with their executions. Safe to run again: ids derive from the source's ids, a spec
already in KV is compared, never blindly overwritten, a stored run is never changed, and
each run counts once. The rules are in docs/migration.md.
"""

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import nats.errors
from pymongo.errors import PyMongoError
from pymongo.uri_parser import parse_uri

from natscron.cli.connect import nats_client
from natscron.migration.errors import MigrationInterruptedError, MigrationSourceError
from natscron.migration.migration import migrate_source
from natscron.migration.mongo_source import MongoSource
from natscron.migration.options import MigrationOptions
from natscron.migration.postgres_source import postgres_source
from natscron.migration.report import MigrationReport
from natscron.migration.source import Source
from natscron.stack import resolve_endpoints
from natscron_shared.contract.storage import DEFAULT_DATABASE
from natscron_shared.runtime.clock import Clock, SystemClock
from natscron_shared.runtime.mongo import DURABLE, new_client
from natscron_shared.runtime.settings import Settings
from natscron_shared.timing.zones import zone_named

__all__ = ["MigrationInterruptedError", "MigrationSourceError", "migrate"]

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
DEFAULT_TIMEZONE = "UTC"


def _parsed(url: str, which: str) -> dict[str, Any]:
    """The URL's parts; the URL itself is never echoed, it may hold a password."""
    try:
        return parse_uri(url)
    except PyMongoError as exc:
        raise MigrationSourceError(f"the {which} URL is not a MongoDB URL: {exc}") from None


def is_postgres(url: str) -> bool:
    return url.startswith(POSTGRES_SCHEMES)


def legacy_database_name(legacy_url: str, explicit: str | None) -> str:
    name = explicit or _parsed(legacy_url, "legacy")["database"]
    if not name:
        raise MigrationSourceError(
            "the legacy URL names no database: put it in the URL's path"
            " (mongodb://host:27017/legacy) or give it explicitly"
        )
    return str(name)


def check_not_natscron_own(legacy_url: str, legacy_name: str, mongo_url: str) -> None:
    """The legacy `jobs` and natscron's `jobs` must differ, or runs would be rewritten in place."""
    natscron = _parsed(mongo_url, "natscron MongoDB")
    same_hosts = set(_parsed(legacy_url, "legacy")["nodelist"]) == set(natscron["nodelist"])
    if same_hosts and legacy_name == (natscron["database"] or DEFAULT_DATABASE):
        raise MigrationSourceError(
            f"the legacy database {legacy_name!r} is natscron's own database; migrate from the"
            " legacy app's database"
        )


def source_zone(timezone: str | None) -> ZoneInfo:
    name = timezone or DEFAULT_TIMEZONE
    try:
        return zone_named(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise MigrationSourceError(f"the time zone {name!r} is not an IANA name") from None


async def migrate(
    source_url: str,
    settings: Settings,
    *,
    legacy_database: str | None = None,
    options: MigrationOptions | None = None,
    timezone: str | None = None,
    clock: Clock | None = None,
) -> MigrationReport:
    """Migrate the store at `source_url` into the natscron the settings point at (or the
    running `natscron up`).

    A MongoDB source's database is the URL's path unless `legacy_database` names it; a
    PostgreSQL source's crons and zone-less times are read in `timezone` (UTC if None).
    Raises `MigrationSourceError`, `ScraperMapError`, `UnmappedKindsError`,
    `StackNotFoundError`, `NotProvisionedError` or `NoRunnersError` before anything is
    written, and `MigrationInterruptedError` when a server fails part way.
    """
    endpoints = resolve_endpoints(settings)
    options = options or MigrationOptions()
    notes: list[str] = []
    opened: AbstractAsyncContextManager[Source]
    if is_postgres(source_url):
        zone = source_zone(timezone)
        if timezone is None:
            notes.append(
                "no --timezone: the source's crons and its times without a zone are read in UTC"
            )
        opened = postgres_source(source_url, zone)
    elif timezone is not None:
        raise MigrationSourceError(
            "--timezone is for PostgreSQL sources: a MongoDB source's schedules carry their"
            " own timezone (UTC when absent)"
        )
    else:
        opened = _mongo_source(source_url, legacy_database, endpoints.mongo_url)
    natscron_client = new_client(endpoints.mongo_url)
    try:
        async with opened as source, nats_client(endpoints.nats_url, settings) as client:
            return await migrate_source(
                source,
                client.jetstream(),
                natscron_client,
                options,
                (clock or SystemClock()).now(),
                notes,
            )
    except (PyMongoError, nats.errors.Error) as exc:
        raise MigrationInterruptedError(
            f"the migration stopped: {type(exc).__name__}: {exc}; what it wrote is consistent,"
            " so run it again once the servers answer"
        ) from None
    finally:
        await natscron_client.close()


@asynccontextmanager
async def _mongo_source(
    legacy_url: str, explicit: str | None, natscron_url: str
) -> AsyncIterator[Source]:
    legacy_name = legacy_database_name(legacy_url, explicit)
    check_not_natscron_own(legacy_url, legacy_name, natscron_url)
    legacy_client = new_client(legacy_url)
    try:
        yield MongoSource(legacy_client.get_database(legacy_name, write_concern=DURABLE))
    finally:
        await legacy_client.close()
