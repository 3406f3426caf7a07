"""`natscron scraper new NAME`: start a scraper package of one's own (docs/scrapers.md)."""

from pathlib import Path
from typing import Annotated

import typer

from natscron.cli.exits import EXIT_HELP, Exit
from natscron.cli.runtime import fail
from natscron.scraper_template import default_directory, new_scraper_package
from natscron_shared.contract.errors import BadRequestError

app = typer.Typer(help=f"Scrapers of one's own. {EXIT_HELP}", no_args_is_help=True)


@app.command()
def new(
    name: Annotated[
        str,
        typer.Argument(
            help="the scraper's name in schedules (lowercase letters, digits, '_' and '-')",
            show_default=False,
        ),
    ],
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            help="where to write the package, a new or empty directory"
            " [default: ./natscron-scraper-NAME]",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Write a package with a scraper, its params model, a test against a local page and
    the `natscron.scrapers` entry point; install it where a runner runs to offer it."""
    target = directory or default_directory(name)
    try:
        written = new_scraper_package(name, target)
    except BadRequestError as exc:
        raise fail(str(exc), Exit.USAGE) from None
    for path in written:
        print(path)
    print(
        f"scraper {name!r} written to {target}: run its tests with `pytest {target}`, and"
        f" install it where a runner runs with `pip install {target.resolve()}`"
    )
