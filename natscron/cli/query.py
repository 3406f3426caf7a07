"""One request to the API over NATS, its reply printed in the format asked for. An unknown
scheduled job's id gets the closest known ones (KV `scheduled_jobs`) as a suggestion."""

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel
from rich.console import RenderableType

from natscron.cli.api_client import Api, ApiReplyError, api
from natscron.cli.exits import exit_of
from natscron.cli.output import Format, emit
from natscron.cli.runtime import fail, run
from natscron_shared.contract.errors import NatscronError
from natscron_shared.contract.suggestions import did_you_mean
from natscron_shared.runtime.settings import Settings

UNKNOWN_SCHEDULE = "unknown_scheduled_job"
SUGGESTED = 3
Check = Callable[[Api, Any], Awaitable[None]]
"""Looks at a reply before it is printed, and may ask more or raise."""


def ask(
    endpoint: str,
    request: BaseModel | None,
    fmt: Format,
    table: Callable[[Any], RenderableType],
    check: Check | None = None,
) -> None:
    async def work(settings: Settings) -> Any:
        async with api(settings) as client:
            try:
                reply = await client.ask(endpoint, request)
                if check is not None:
                    await check(client, reply)
            except ApiReplyError as exc:
                raise await _suggesting(client, exc, request) from None
            return reply

    reply = run(work)
    try:
        emit(reply, fmt, table)
    except NatscronError as exc:  # a table that cannot read the reply
        raise fail(str(exc), exit_of(exc)) from None


async def _suggesting(client: Api, error: ApiReplyError, request: BaseModel | None) -> Exception:
    """The error, with the known ids closest to the unknown one the request named."""
    unknown = getattr(request, "scheduled_job_id", None)
    if error.code != UNKNOWN_SCHEDULE or not isinstance(unknown, str):
        return error
    suggestion = did_you_mean(unknown, await client.schedule_ids(), SUGGESTED)
    return ApiReplyError(error.code, error.detail + suggestion) if suggestion else error
