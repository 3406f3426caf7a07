"""`natscron migrate --from MONGO_URL`: the legacy app's recurring definitions become
natscron schedules in KV `scheduled_jobs`, their runs natscron `jobs` documents.

Safe to run again: ids derive from the legacy `_id`s, a spec already in KV is compared,
never blindly overwritten, a stored run is never changed, and what was migrated is
marked in the legacy collection. The rules are in docs/migration.md.
"""

from typing import Any

import nats.errors
from pymongo.errors import PyMongoError
from pymongo.uri_parser import parse_uri

from natscron.cli.connect import nats_client
from natscron.migration.migration import migrate_databases
from natscron.migration.options import DEFAULT_SCRAPER, MigrationOptions
from natscron.migration.report import MigrationReport
from natscron.stack import resolve_endpoints
from natscron_shared.contract.errors import BadRequestError, NatscronError
from natscron_shared.contract.storage import DEFAULT_DATABASE
from natscron_shared.runtime.clock import Clock, SystemClock
from natscron_shared.runtime.mongo import DURABLE, database_of, new_client
from natscron_shared.runtime.settings import Settings


class MigrationSourceError(BadRequestError):
    """The legacy database cannot be used: it is not named, or it is natscron's own."""


class MigrationInterruptedError(NatscronError):
    """MongoDB or NATS failed part way; what was written is consistent, so rerun."""

    code = "unavailable"


def _parsed(url: str, which: str) -> dict[str, Any]:
    """The URL's parts; the URL itself is never echoed, it may hold a password."""
    try:
        return parse_uri(url)
    except PyMongoError as exc:
        raise MigrationSourceError(f"the {which} URL is not a MongoDB URL: {exc}") from None


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


async def migrate(
    legacy_url: str,
    settings: Settings,
    *,
    legacy_database: str | None = None,
    scraper: str = DEFAULT_SCRAPER,
    dry_run: bool = False,
    force: bool = False,
    unchecked: bool = False,
    clock: Clock | None = None,
) -> MigrationReport:
    """Migrate the legacy `jobs` collection at `legacy_url` (its database from the URL's
    path unless `legacy_database` names it) into the natscron the settings point at (or
    the running `natscron up`).

    `scraper` is the natscron scraper legacy definitions run with; unless `unchecked`,
    it and each definition's params are checked against what the live runners advertise.
    `dry_run` writes nothing anywhere and reports what would be done; `force` replaces KV
    specs that differ from their definition. Raises `MigrationSourceError`,
    `StackNotFoundError`, `NotProvisionedError` or `NoRunnersError` before anything is
    written, and `MigrationInterruptedError` when MongoDB or NATS fails part way.
    """
    endpoints = resolve_endpoints(settings)
    legacy_name = legacy_database_name(legacy_url, legacy_database)
    check_not_natscron_own(legacy_url, legacy_name, endpoints.mongo_url)
    options = MigrationOptions(scraper=scraper, dry_run=dry_run, force=force, unchecked=unchecked)
    legacy_client = new_client(legacy_url)
    natscron_client = new_client(endpoints.mongo_url)
    try:
        async with nats_client(endpoints.nats_url, settings) as client:
            return await migrate_databases(
                legacy_client.get_database(legacy_name, write_concern=DURABLE),
                client.jetstream(),
                database_of(natscron_client),
                options,
                (clock or SystemClock()).now(),
            )
    except (PyMongoError, nats.errors.Error) as exc:
        raise MigrationInterruptedError(
            f"the migration stopped: {type(exc).__name__}: {exc}; what it wrote is consistent,"
            " so run it again once the servers answer"
        ) from None
    finally:
        await legacy_client.close()
        await natscron_client.close()
