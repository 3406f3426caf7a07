"""Running one command: settings from the environment, logging, the event loop, and every
error turned into one sentence on stderr and an exit status (`natscron.cli.exits`)."""

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from pydantic import ValidationError

from natscron.cli.exits import Exit, exit_of
from natscron.stack import LOG_FILE
from natscron_shared.contract.errors import NatscronError, problems_sentence
from natscron_shared.runtime.settings import Settings

T = TypeVar("T")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
QUIET_LIBRARIES = ("httpx", "httpcore")
"""They log every request at INFO; the runner reports failed fetches itself."""


def fail(message: str, status: Exit) -> typer.Exit:
    print(message, file=sys.stderr)
    return typer.Exit(status)


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = problems_sentence(exc.errors())
        raise fail(f"natscron: bad NATSCRON_* setting: {problems}", Exit.USAGE) from None


def configure_logging(settings: Settings, to_file: bool) -> None:
    """`up` keeps the terminal for the runs: service logs go to `<data_dir>/natscron.log`
    and only warnings to the terminal. Anything else logs to stderr, as containers do."""
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)
    if not to_file:
        logging.basicConfig(level=settings.log_level.upper(), format=LOG_FORMAT)
        return
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    file_handler = logging.FileHandler(settings.data_dir / LOG_FILE)
    terminal = logging.StreamHandler()
    terminal.setLevel(logging.WARNING)
    logging.basicConfig(
        level=settings.log_level.upper(), format=LOG_FORMAT, handlers=[file_handler, terminal]
    )


def run(work: Callable[[Settings], Awaitable[T]], logs_to_file: bool = False) -> T:
    settings = load_settings()
    configure_logging(settings, logs_to_file)
    try:
        return asyncio.run(_awaited(work(settings)))
    except NatscronError as exc:
        raise fail(str(exc), exit_of(exc)) from None
    except KeyboardInterrupt:
        raise typer.Exit(Exit.FAILURE) from None


async def _awaited(work: Awaitable[T]) -> T:
    return await work
