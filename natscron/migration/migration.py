"""A whole migration over open connections: every source schedule is planned first (so an
unmapped kind stops it before anything is written), then written, then every run of a
migrated schedule is linked, and last the runs not counted yet are counted in their
schedules' history and statistics. Records go in the source's order, so reports of two
runs line up."""

from collections import Counter
from datetime import datetime

from nats.js import JetStreamContext
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from natscron.migration.definition_step import DefinitionStep
from natscron.migration.errors import UnmappedKindsError
from natscron.migration.history_step import HistoryStep
from natscron.migration.options import MigrationOptions
from natscron.migration.plan import Planned, plan, refuse_broken_chains
from natscron.migration.report import MigrationReport, RunOutcome
from natscron.migration.run_step import RunStep
from natscron.migration.source import Source
from natscron_shared.contract import names
from natscron_shared.contract.catalogue import Catalogue, NoRunnersError, no_runners_message
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.contract.storage import Document
from natscron_shared.nats.jetstream_check import Needs, require_provisioned
from natscron_shared.nats.schedule_bucket import stored_chains
from natscron_shared.nats.scrapers_bucket import load_catalogue
from natscron_shared.runtime.mongo import database_of, ensure_indexes, jobs, migrated_runs
from natscron_shared.runtime.mongo import scheduled_jobs as scheduled_jobs_of


async def migrate_source(
    source: Source,
    js: JetStreamContext,
    natscron: AsyncMongoClient[Document],
    options: MigrationOptions,
    now: datetime,
    notes: list[str],
) -> MigrationReport:
    """Raises before writing anything if NATS is not provisioned, if no runner advertises
    scrapers to check against (unless `options.unchecked`), or if a kind is unmapped
    (unless `options.skip_unmapped` or `options.dry_run`)."""
    checked = not options.unchecked
    buckets = (
        (names.KV_SCHEDULED_JOBS, names.KV_SCRAPERS) if checked else (names.KV_SCHEDULED_JOBS,)
    )
    await require_provisioned(js, Needs(buckets=buckets), "migrate command")
    catalogue = await _catalogue(js) if checked else None
    planned = plan([d async for d in source.definitions()], options.scrapers, catalogue)
    if any(p.spec is not None and p.spec.after for p in planned):
        bucket = await js.key_value(names.KV_SCHEDULED_JOBS)
        planned = refuse_broken_chains(planned, await stored_chains(bucket))
    unmapped = Counter(p.unmapped_kind for p in planned if p.unmapped_kind is not None)
    if unmapped and not (options.skip_unmapped or options.dry_run):
        raise UnmappedKindsError(dict(sorted(unmapped.items())))
    db = database_of(natscron)
    if not options.dry_run:
        await ensure_indexes(db)
    report = MigrationReport(
        dry_run=options.dry_run,
        layout=source.layout,
        legacy_database=source.database,
        notes=notes,
        unmapped_kinds=dict(sorted(unmapped.items())),
    )
    specs, not_migrated = await _write_definitions(source, js, db, options, now, planned, report)
    linked = await _link_runs(source, db, options, now, specs, not_migrated, report)
    history = HistoryStep(natscron, db, options.dry_run, now)
    for scheduled_job_id in sorted({spec.scheduled_job_id for spec in specs.values()}):
        report.runs_counted += await history.count(
            scheduled_job_id, linked.get(scheduled_job_id, 0)
        )
    return report


async def _write_definitions(
    source: Source,
    js: JetStreamContext,
    db: AsyncDatabase[Document],
    options: MigrationOptions,
    now: datetime,
    planned: list[Planned],
    report: MigrationReport,
) -> tuple[dict[str, ScheduledJob], dict[str, str]]:
    """The spec each key of a migrated schedule links its runs to, and why the other
    schedules' runs are not linked."""
    bucket = await js.key_value(names.KV_SCHEDULED_JOBS)
    step = DefinitionStep(source, bucket, scheduled_jobs_of(db), options, now)
    specs: dict[str, ScheduledJob] = {}
    not_migrated: dict[str, str] = {}
    for decided in planned:
        result, spec = await step.migrate(decided)
        report.definitions.append(result)
        for key in decided.definition.keys:
            if spec is not None:
                specs.setdefault(key, spec)
            else:
                reason = f"its definition {result.legacy_id} was skipped: {result.message}"
                not_migrated.setdefault(key, reason)
    return specs, not_migrated


async def _link_runs(
    source: Source,
    db: AsyncDatabase[Document],
    options: MigrationOptions,
    now: datetime,
    specs: dict[str, ScheduledJob],
    not_migrated: dict[str, str],
    report: MigrationReport,
) -> Counter[str]:
    """Runs linked by this migration, by scheduled job id."""
    step = RunStep(source, jobs(db), migrated_runs(db), options.scrapers, options.dry_run, now)
    linked: Counter[str] = Counter()
    async for run in source.runs():
        if run.link_problem is not None:
            report.runs.append(RunStep.skipped(run, None, run.link_problem))
            continue
        if run.reference is None:
            report.unlinked_runs += 1
            continue
        spec = specs.get(run.reference)
        if spec is None:
            reason = not_migrated.get(
                run.reference, f"{run.reference!r} names no schedule in the source"
            )
            report.runs.append(RunStep.skipped(run, None, reason))
            continue
        result = await step.migrate(run, spec)
        report.runs.append(result)
        if result.outcome is RunOutcome.LINKED:
            linked[spec.scheduled_job_id] += 1
    return linked


async def _catalogue(js: JetStreamContext) -> Catalogue:
    catalogue = await load_catalogue(js)
    if not catalogue:
        raise NoRunnersError(no_runners_message("migrate with --unchecked"))
    return catalogue
