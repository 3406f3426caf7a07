"""One request to the API over NATS, its reply printed in the format asked for."""

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel
from rich.console import RenderableType

from natscron.cli.api_client import api
from natscron.cli.exits import exit_of
from natscron.cli.output import Format, emit
from natscron.cli.runtime import fail, run
from natscron_shared.contract.errors import NatscronError
from natscron_shared.runtime.settings import Settings


def ask(
    endpoint: str,
    request: BaseModel | None,
    fmt: Format,
    table: Callable[[Any], RenderableType],
) -> None:
    async def work(settings: Settings) -> Any:
        async with api(settings) as client:
            return await client.ask(endpoint, request)

    reply = run(work)
    try:
        emit(reply, fmt, table)
    except NatscronError as exc:  # a table that cannot read the reply
        raise fail(str(exc), exit_of(exc)) from None
