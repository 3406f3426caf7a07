"""`natscron migrate --from MONGO_URL`: the legacy app's recurring jobs and their runs into
natscron (`natscron.migrate`, rules in docs/migration.md)."""

from typing import Annotated

import typer
from rich.console import Group
from rich.text import Text

from natscron.cli.output import Format, OutputOption, emit
from natscron.cli.runtime import run
from natscron.migration.options import DEFAULT_SCRAPER
from natscron.migration.report import MigrationReport
from natscron_shared.runtime.settings import Settings


def migrate(
    legacy_url: Annotated[
        str,
        typer.Option("--from", help="the legacy app's MongoDB URL (its path names the database)"),
    ],
    database: Annotated[
        str | None, typer.Option(help="the legacy database, when the URL names none")
    ] = None,
    scraper: Annotated[
        str, typer.Option(help="the natscron scraper legacy definitions run with")
    ] = DEFAULT_SCRAPER,
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
    """Migrate the legacy `jobs` collection: definitions become schedules, runs become jobs.
    Safe to run again."""
    from natscron.migrate import migrate as run_migration

    async def work(settings: Settings) -> MigrationReport:
        return await run_migration(
            legacy_url,
            settings,
            legacy_database=database,
            scraper=scraper,
            dry_run=dry_run,
            force=force,
            unchecked=unchecked,
        )

    report = run(work)
    emit(report.model_dump(mode="json"), output, lambda _: _summary(report))


def _summary(report: MigrationReport) -> Group:
    lines = [
        Text(
            f"{result.scheduled_job_id or result.legacy_id}: {result.outcome.value}"
            f" ({result.message})"
        )
        for result in report.definitions
    ]
    definitions = ", ".join(f"{n} {name}" for name, n in report.definition_counts.items() if n)
    runs = ", ".join(f"{n} {name}" for name, n in report.run_counts.items() if n)
    lines.append(Text(f"definitions: {definitions or 'none found'}"))
    lines.append(
        Text(f"runs: {runs or 'none found'}; not linked to a definition: {report.unlinked_runs}")
    )
    if report.dry_run:
        lines.append(Text("dry run: nothing was written"))
    return Group(*lines)
