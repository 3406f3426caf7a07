"""A whole migration over open connections: every recurring definition of the legacy
`jobs` collection, then every run that references one. Documents go in `_id` order, so
reports of two runs line up."""

from collections.abc import Mapping
from datetime import datetime

from nats.js import JetStreamContext
from pymongo.asynchronous.database import AsyncDatabase

from natscron.migration.definition_step import DefinitionStep
from natscron.migration.legacy_values import LegacyValueError
from natscron.migration.options import MigrationOptions
from natscron.migration.report import MigrationReport
from natscron.migration.run_step import RunStep
from natscron.migration.runs import LINK_FIELD, reference
from natscron_shared.contract import names
from natscron_shared.contract.catalogue import Catalogue, NoRunnersError, no_runners_message
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.contract.storage import Document
from natscron_shared.nats.jetstream_check import Needs, require_provisioned
from natscron_shared.nats.scrapers_bucket import load_catalogue
from natscron_shared.runtime.mongo import ensure_indexes, jobs

LEGACY_COLLECTION = "jobs"
DEFINITIONS: Mapping[str, object] = {"cron_expression": {"$ne": None}}
OTHERS: Mapping[str, object] = {"cron_expression": None}
"""Matches a missing field too: every document that is not a definition."""


async def migrate_databases(
    legacy_db: AsyncDatabase[Document],
    js: JetStreamContext,
    natscron_db: AsyncDatabase[Document],
    options: MigrationOptions,
    now: datetime,
) -> MigrationReport:
    """Raises before writing anything if NATS is not provisioned, or if no runner
    advertises scrapers to check against (unless `options.unchecked`)."""
    checked = not options.unchecked
    buckets = (
        (names.KV_SCHEDULED_JOBS, names.KV_SCRAPERS) if checked else (names.KV_SCHEDULED_JOBS,)
    )
    await require_provisioned(js, Needs(buckets=buckets), "migrate command")
    catalogue = await _catalogue(js) if checked else None
    if not options.dry_run:
        await ensure_indexes(natscron_db)
    legacy = legacy_db[LEGACY_COLLECTION]
    report = MigrationReport(dry_run=options.dry_run, legacy_database=legacy_db.name)
    definitions = DefinitionStep(
        legacy, await js.key_value(names.KV_SCHEDULED_JOBS), options, catalogue, now
    )
    specs: dict[str, ScheduledJob] = {}
    not_migrated: dict[str, str] = {}
    async for document in legacy.find(DEFINITIONS).sort("_id", 1):
        result, spec = await definitions.migrate(document)
        report.definitions.append(result)
        for key in (k for k in (result.legacy_id, result.legacy_job_id) if k is not None):
            if spec is not None:
                specs[key] = spec
            else:
                not_migrated[key] = (
                    f"its definition {result.legacy_id} was skipped: {result.message}"
                )
    runs = RunStep(legacy, jobs(natscron_db), options.dry_run, now)
    async for document in legacy.find(OTHERS).sort("_id", 1):
        try:
            ref = reference(document)
        except LegacyValueError as exc:
            report.runs.append(RunStep.skipped(document, None, str(exc)))
            continue
        if ref is None:
            report.unlinked_runs += 1
            continue
        spec = specs.get(ref)
        if spec is None:
            reason = not_migrated.get(
                ref, f"{LINK_FIELD} {ref!r} names no recurring definition in the legacy collection"
            )
            report.runs.append(RunStep.skipped(document, None, reason))
            continue
        report.runs.append(await runs.migrate(document, spec))
    return report


async def _catalogue(js: JetStreamContext) -> Catalogue:
    catalogue = await load_catalogue(js)
    if not catalogue:
        raise NoRunnersError(no_runners_message("migrate with --unchecked"))
    return catalogue
