"""What the services' request/reply handlers (`jobs.trigger`, `jobs.backfill`,
`jobs.cancel`) share: a size bound checked before parsing, and one way to turn a failure
into an `ErrorReply` sentence, counted by its code."""

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from faststream.nats import NatsMessage
from prometheus_client import Counter
from pydantic import ValidationError

from natscron_shared.contract.errors import BadRequestError, MessageTooLargeError, NatscronError
from natscron_shared.contract.messages import ErrorReply

MAX_LISTED_PROBLEMS = 3
Decoder = Callable[[NatsMessage, Callable[[NatsMessage], Awaitable[Any]]], Awaitable[Any]]


def invalid_request(error: ValidationError, what: str) -> BadRequestError:
    """A sentence naming the first problems' fields, without pydantic's decorations."""
    problems = "; ".join(
        f"{'.'.join(map(str, detail['loc'][1:])) or 'body'}: {detail['msg']}"
        for detail in error.errors(include_url=False, include_input=False)[:MAX_LISTED_PROBLEMS]
    )
    return BadRequestError(f"invalid {what} request: {problems}")


def bounded_decoder(max_bytes: int) -> Decoder:
    """A FastStream decoder that refuses a body over `max_bytes` before parsing it."""

    async def decode(message: NatsMessage, parse: Callable[[NatsMessage], Awaitable[Any]]) -> Any:
        if len(message.body) > max_bytes:
            raise MessageTooLargeError(f"request of {len(message.body)} bytes is over {max_bytes}")
        return await parse(message)

    return decode


def error_reply(error: Exception, what: str, outcomes: Counter, log: logging.Logger) -> ErrorReply:
    """The reply to a `what` request that failed, counted in `outcomes` by its code; an
    unexpected error is logged with its traceback and answered as an internal error."""
    if isinstance(error, ValidationError):
        error = invalid_request(error, what)
    if not isinstance(error, NatscronError):
        log.exception("a %s request failed unexpectedly", what, exc_info=error)
        error = NatscronError(f"internal error: {type(error).__name__}")
    outcomes.labels(error.code).inc()
    log.info("rejected a %s request: %s", what, error)
    return ErrorReply.of(error.code, error.detail)
