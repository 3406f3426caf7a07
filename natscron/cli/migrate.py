"""`natscron migrate --from URL`: the schedules and runs of a MongoDB or PostgreSQL store
of the systems natscron replaces, into natscron (`natscron.migrate`, rules in
docs/migration.md)."""

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Group
from rich.text import Text

from natscron.cli.output import Format, OutputOption, emit
from natscron.cli.runtime import run
from natscron.migration.options import MigrationOptions
from natscron.migration.report import MigrationReport
from natscron.migration.scraper_map import load_scraper_map
from natscron_shared.runtime.settings import Settings


def migrate(
    source_url: Annotated[
        str,
        typer.Option(
            "--from",
            help="the source's MongoDB or PostgreSQL URL (its path names the database)",
        ),
    ],
    database: Annotated[
        str | None, typer.Option(help="the MongoDB source's database, when the URL names none")
    ] = None,
    scraper: Annotated[
        str | None,
        typer.Option(help="the natscron scraper every kind the scraper map leaves out runs with"),
    ] = None,
    scraper_map: Annotated[
        Path | None,
        typer.Option(help="a YAML file mapping each source kind to a scraper and its params"),
    ] = None,
    skip_unmapped: Annotated[
        bool,
        typer.Option(
            "--skip-unmapped", help="leave out schedules of kinds no scraper is mapped for"
        ),
    ] = False,
    timezone: Annotated[
        str | None,
        typer.Option(help="the zone of a PostgreSQL source's crons and zone-less times (UTC)"),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="report what would be done; write nothing")
    ] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="replace KV specs that differ from their legacy definition"),
    ] = False,
    unchecked: Annotated[
        bool,
        typer.Option(
            "--unchecked", help="do not check scraper and params against the live runners"
        ),
    ] = False,
    output: OutputOption = Format.TABLE,
) -> None:
    """Migrate a source's schedules and runs: schedules go to KV, runs to `jobs`, counted in
    the schedules' history and statistics. Safe to run again."""
    from natscron.migrate import migrate as run_migration

    async def work(settings: Settings) -> MigrationReport:
        options = MigrationOptions(
            scrapers=load_scraper_map(scraper_map, scraper),
            skip_unmapped=skip_unmapped,
            dry_run=dry_run,
            force=force,
            unchecked=unchecked,
        )
        return await run_migration(
            source_url, settings, legacy_database=database, options=options, timezone=timezone
        )

    report = run(work)
    emit(report.model_dump(mode="json"), output, lambda _: _summary(report))


def _summary(report: MigrationReport) -> Group:
    lines = [Text(f"source: {report.layout} database {report.legacy_database}")]
    lines += [Text(f"note: {note}") for note in report.notes]
    for result in report.definitions:
        kind = f" [{result.kind}]" if result.kind else ""
        lines.append(
            Text(
                f"{result.scheduled_job_id or result.legacy_id}{kind}: {result.outcome.value}"
                f" ({result.message})"
            )
        )
    definitions = ", ".join(f"{n} {name}" for name, n in report.definition_counts.items() if n)
    runs = ", ".join(f"{n} {name}" for name, n in report.run_counts.items() if n)
    lines.append(Text(f"schedules: {definitions or 'none found'}"))
    lines.append(
        Text(f"runs: {runs or 'none found'}; not linked to a schedule: {report.unlinked_runs}")
    )
    counted = "would be counted" if report.dry_run else "counted"
    lines.append(Text(f"runs {counted} in history and statistics: {report.runs_counted}"))
    if report.unmapped_kinds:
        unmapped = ", ".join(f"{kind} ({n})" for kind, n in report.unmapped_kinds.items())
        lines.append(Text(f"no scraper mapped for: {unmapped}"))
    if report.dry_run:
        lines.append(Text("dry run: nothing was written"))
    return Group(*lines)
