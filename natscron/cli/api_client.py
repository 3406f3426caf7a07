"""The CLI's way to the API: requests on `natscron.api.*` over NATS, so a command needs only
NATS credentials. A reply is returned as the JSON it came as (what HTTP would answer); an
error reply is raised with its code. `reply_as` reads a reply as its model (`natscron_api.views`
and the contract's replies), for what is drawn of it."""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import nats.errors
from nats.aio.client import Client
from pydantic import BaseModel, ValidationError

from natscron.cli.connect import nats_client
from natscron.stack import resolve_nats_url
from natscron_api.requests import subject_of
from natscron_shared.contract import names
from natscron_shared.contract.errors import NatscronError, plain_message
from natscron_shared.runtime.settings import Settings

M = TypeVar("M", bound=BaseModel)
REQUEST_TIMEOUT_SECONDS = 15.0
SUGGESTION_TIMEOUT_SECONDS = 3.0
ERROR_CODE_HEADER = "Nats-Service-Error-Code"


class ApiReplyError(NatscronError):
    """An error the API answered, with its code (`unknown_scheduled_job`, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class UnexpectedReplyError(NatscronError):
    """A reply that is not what its endpoint answers: an API of another version."""

    code = "remote_error"


def reply_as(model: type[M], reply: Any) -> M:
    try:
        return model.model_validate(reply)
    except ValidationError as exc:
        raise UnexpectedReplyError(
            f"the API's reply is no {model.__name__} ({exc.error_count()} problems, the first:"
            f" {plain_message(exc.errors()[0])}); is the API of another natscron version? `-o json`"
            " prints it as it came"
        ) from None


class Api:
    def __init__(self, client: Client) -> None:
        self._client = client

    async def ask(self, endpoint: str, request: BaseModel | None = None) -> Any:
        subject = subject_of(endpoint)
        data = b"" if request is None else request.model_dump_json(exclude_none=True).encode()
        try:
            reply = await self._client.request(subject, data, timeout=REQUEST_TIMEOUT_SECONDS)
        except nats.errors.NoRespondersError:
            raise NatscronError(
                f"no natscron API answered on {subject}; is `natscron api` (or `natscron up`)"
                " running?"
            ) from None
        except (TimeoutError, nats.errors.TimeoutError):
            raise NatscronError(
                f"the natscron API did not answer on {subject} within {REQUEST_TIMEOUT_SECONDS:g}s"
            ) from None
        try:
            answer = json.loads(reply.data)
        except ValueError:
            raise NatscronError(f"the API's reply on {subject} is not JSON") from None
        if (reply.headers or {}).get(ERROR_CODE_HEADER):
            error = answer.get("error", {}) if isinstance(answer, dict) else {}
            raise ApiReplyError(
                str(error.get("code", "remote_error")), str(error.get("message", ""))
            )
        return answer

    async def schedule_ids(self) -> list[str]:
        """The scheduled jobs' ids (keys of KV `scheduled_jobs`), for suggestions: none when
        they cannot be read in time."""
        try:
            async with asyncio.timeout(SUGGESTION_TIMEOUT_SECONDS):
                bucket = await self._client.jetstream().key_value(names.KV_SCHEDULED_JOBS)
                keys: list[str] = await bucket.keys()
        except (nats.errors.Error, TimeoutError):
            return []
        return keys


@asynccontextmanager
async def api(settings: Settings) -> AsyncIterator[Api]:
    async with nats_client(resolve_nats_url(settings), settings) as client:
        yield Api(client)
