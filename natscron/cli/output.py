"""`-o table|json|yaml`: JSON and YAML print the API's reply as it came (what HTTP answers
too); a table is drawn with rich, fitted to the terminal (`columns.py`), never wrapped by
rich, and unpadded when the output is not a terminal."""

import json
import shlex
import sys
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console, RenderableType

PIPE_WIDTH = 10_000
"""Wide enough that rich never wraps a line of piped output; nothing pads to it."""
PROGRAM = "natscron"


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


OutputOption = Annotated[
    Format,
    typer.Option(
        "--output", "-o", help="table (for people), json or yaml (the API's reply, unchanged)"
    ),
]

_invocation: list[str] = []


def remember_invocation(args: Sequence[str]) -> None:
    """The command line being run, for the next page's command (`next_page`)."""
    _invocation[:] = list(args)


def next_page(cursor: str) -> str:
    """The command that prints the next page: this one, with `--cursor` given `cursor`
    (only the option, when no command line was remembered)."""
    if not _invocation:
        return shlex.join(["--cursor", cursor])
    kept: list[str] = []
    skip = False
    for arg in _invocation:
        if skip:
            skip = False
        elif arg == "--cursor":
            skip = True
        elif not arg.startswith("--cursor="):
            kept.append(arg)
    return shlex.join([PROGRAM, *kept, "--cursor", cursor])


def console() -> Console:
    return Console(width=None if sys.stdout.isatty() else PIPE_WIDTH, highlight=False)


def emit(reply: Any, fmt: Format, table: Callable[[Any], RenderableType]) -> None:
    if fmt is Format.JSON:
        print(json.dumps(reply, indent=2))
    elif fmt is Format.YAML:
        print(yaml.safe_dump(reply, sort_keys=False, allow_unicode=True), end="")
    else:
        console().print(table(reply), soft_wrap=True)
