"""Entry point of the `natscron` command (typer): the services, the dev stack, provisioning,
and the commands that ask the API over NATS (`natscron.api.*`)."""

import sys
from collections.abc import Sequence
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.text import Text

from natscron.cli import backfill, jobs, migrate, scheduler, schedules, scraper
from natscron.cli.exits import EXIT_HELP, Exit
from natscron.cli.output import Format, OutputOption, emit, remember_invocation
from natscron.cli.runtime import run
from natscron_shared.contract.errors import problems_sentence
from natscron_shared.runtime.settings import Settings

app = typer.Typer(
    name="natscron",
    help=(
        "Distributed scheduler for recurring scrape jobs, over NATS JetStream and MongoDB."
        " Commands that read or change schedules and jobs ask the natscron API over NATS"
        f" (natscron.api.*), so they need only NATS. {EXIT_HELP}"
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.add_typer(schedules.app, name="schedules")
app.add_typer(jobs.app, name="jobs")
app.add_typer(scraper.app, name="scraper")


def _version(shown: bool) -> None:
    if shown:
        print(f"natscron {installed_version('natscron')}")
        raise typer.Exit()


@app.callback()
def natscron(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="print the version and exit"
        ),
    ] = False,
) -> None:
    """The settings come from NATSCRON_* variables (README, Configuration)."""


# --- running things ---------------------------------------------------------------------


@app.command()
def up(
    demo: Annotated[bool, typer.Option("--demo", help="add a demo site and two schedules")] = False,
) -> None:
    """Run everything here: embedded NATS and MongoDB unless configured, all services, the API."""
    from natscron.cli.up import up as run_up

    run(lambda settings: run_up(settings, demo=demo), logs_to_file=True)


def _serve(name: str) -> None:
    from natscron.cli.serve import serve

    run(lambda settings: serve(name, settings))


@app.command()
def ticker() -> None:
    """Run one ticker (needs NATSCRON_NATS_URL or a running `natscron up`)."""
    _serve("ticker")


@app.command()
def runner() -> None:
    """Run one runner (needs NATS and MongoDB URLs, or a running `natscron up`)."""
    _serve("runner")


@app.command()
def recorder() -> None:
    """Run one recorder (needs NATS and MongoDB URLs, or a running `natscron up`)."""
    _serve("recorder")


@app.command()
def api() -> None:
    """Run the API: HTTP on NATSCRON_API_HOST:NATSCRON_API_PORT and NATS on natscron.api.*."""
    _serve("api")


@app.command()
def provision() -> None:
    """Create or update the JetStream streams, buckets and consumers natscron needs."""
    from natscron.cli.provision import provision_from_settings

    run(lambda settings: provision_from_settings(settings, lambda line: print(line, flush=True)))


@app.command()
def asyncapi() -> None:
    """Print the AsyncAPI document of the message contract (YAML)."""
    from natscron.asyncapi import asyncapi_yaml

    print(asyncapi_yaml(), end="")


# --- schedules and jobs -------------------------------------------------------------------


@app.command()
def apply(
    file: Annotated[
        Path,
        typer.Option("--file", "-f", help="the YAML file of scheduled jobs", show_default=False),
    ],
    unchecked: Annotated[
        bool,
        typer.Option(
            "--unchecked",
            help="write without checking scrapers and params against what running runners"
            " advertise (needed while no runner is up)",
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="show what would be created, updated, deleted; write nothing"
        ),
    ] = False,
    prune: Annotated[
        bool, typer.Option("--prune", help="also delete the scheduled jobs the file does not name")
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="delete without asking (with --prune)")
    ] = False,
    output: OutputOption = Format.TABLE,
) -> None:
    """Create or update scheduled jobs from a YAML file, all or nothing (writes KV directly)."""
    from natscron.cli.apply import Plan, apply_file

    def confirm(ids: list[str]) -> bool:
        if yes:
            return True
        if not sys.stdin.isatty():
            return False
        return typer.confirm(f"delete {len(ids)} scheduled job(s): {', '.join(ids)}?")

    async def work(settings: Settings) -> Plan:
        return await apply_file(file, settings, unchecked, dry_run, prune, confirm)

    plan = run(work)
    emit(plan.as_json(), output, lambda _: Text(plan.report()))


app.command()(jobs.trigger)
app.command("pause")(schedules.pause)
app.command("resume")(schedules.resume)
app.command("delete")(schedules.delete)
app.command("cancel")(jobs.cancel)
app.command("retry")(jobs.retry)
app.command("stats")(scheduler.stats)
app.command("status")(scheduler.status)
app.command("migrate")(migrate.migrate)
app.command("backfill")(backfill.backfill)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(argv) if argv is not None else sys.argv[1:]
    remember_invocation(args)
    try:
        app(args=args, prog_name="natscron")
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else Exit.FAILURE
    except ValidationError as exc:
        print(f"natscron: {problems_sentence(exc.errors())}", file=sys.stderr)
        return Exit.USAGE
    return Exit.OK


if __name__ == "__main__":
    sys.exit(main())
