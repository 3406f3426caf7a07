"""`-o table|json|yaml`: JSON and YAML print the API's reply as it came (what HTTP answers
too); a table is drawn with rich, wide enough for ids when the output is not a terminal."""

import json
import sys
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console, RenderableType

PIPE_WIDTH = 250


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


def console() -> Console:
    return Console(width=None if sys.stdout.isatty() else PIPE_WIDTH, highlight=False)


def emit(reply: Any, fmt: Format, table: Callable[[Any], RenderableType]) -> None:
    if fmt is Format.JSON:
        print(json.dumps(reply, indent=2))
    elif fmt is Format.YAML:
        print(yaml.safe_dump(reply, sort_keys=False, allow_unicode=True), end="")
    else:
        console().print(table(reply))
