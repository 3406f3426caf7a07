"""The project's error hierarchy. Each error has a stable `code` for error replies, the
same in every face (NATS, HTTP, the CLI's exit status), and `status_of` maps a code to its
HTTP status (also the micro error code of a NATS reply)."""

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

MAX_LISTED_PROBLEMS = 5
PYDANTIC_PREFIXES = ("Value error, ", "Assertion failed, ")


class NatscronError(Exception):
    code = "internal_error"

    def __str__(self) -> str:
        return f"natscron: {self.detail}"

    @property
    def detail(self) -> str:
        """The message without the `natscron:` prefix, for error replies."""
        return super().__str__()


class CodedError(NatscronError):
    """An error whose code is chosen where it is raised (an API refusal, a remote's reply)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class BadRequestError(NatscronError):
    """The message could not be parsed or validated."""

    code = "bad_request"


class MessageTooLargeError(BadRequestError):
    code = "message_too_large"


class MalformedJsonError(BadRequestError):
    code = "malformed_json"


class InvalidRequestError(BadRequestError):
    """A request its model refuses; the sentence names the fields."""

    code = "invalid_request"


class InvalidChainError(BadRequestError):
    """A write or delete would leave a schedule running after one that does not exist, or a
    chain that leads back to itself; the message names each chain."""

    code = "invalid_chain"


class UnavailableError(NatscronError):
    """A server behind the answer (NATS, MongoDB) is down or slow: retry later."""

    code = "unavailable"


class UnknownScheduledJobError(NatscronError):
    code = "unknown_scheduled_job"

    def __init__(self, scheduled_job_id: str) -> None:
        super().__init__(f"no scheduled job with id {scheduled_job_id!r}")
        self.scheduled_job_id = scheduled_job_id


class UnknownScraperError(NatscronError):
    code = "unknown_scraper"

    def __init__(self, scraper: str) -> None:
        super().__init__(f"no scraper registered under the name {scraper!r}")
        self.scraper = scraper


class UnknownJobError(NatscronError):
    code = "unknown_job"


class NotRetryableError(NatscronError):
    """Only a job that ended `failed` or `cancelled` can be retried."""

    code = "not_retryable"


HTTP_STATUS_OF_CODE: dict[str, int] = {
    "malformed_json": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "origin_not_allowed": 403,
    "not_found": 404,
    "unknown_scheduled_job": 404,
    "unknown_job": 404,
    "no_screenshot": 404,
    "method_not_allowed": 405,
    "already_exists": 409,
    "invalid_state": 409,
    "not_retryable": 409,
    "no_runners": 409,
    "not_active": 409,
    "overlap_policy": 409,
    "invalid_chain": 409,
    "too_many_jobs": 409,
    "message_too_large": 413,
    "body_too_large": 413,
    "bad_request": 422,
    "invalid_request": 422,
    "invalid_cursor": 422,
    "invalid_job": 422,
    "unknown_scraper": 422,
    "invalid_range": 422,
    "too_many_slots": 422,
    "invalid_params": 422,
    "internal_error": 500,
    "remote_error": 502,
    "unavailable": 503,
    "not_provisioned": 503,
}
"""Codes not listed (a newer service's) are answered as 502: the error came from behind."""


def status_of(code: str) -> int:
    return HTTP_STATUS_OF_CODE.get(code, 502)


def invalid_request(error: ValidationError) -> InvalidRequestError:
    return InvalidRequestError(problems_sentence(error.errors(include_url=False)))


def problems_sentence(errors: Sequence[Mapping[str, Any]]) -> str:
    """Validation errors as one line: `field: what is wrong; ...`, the first few only."""
    problems = "; ".join(_problem(error) for error in errors[:MAX_LISTED_PROBLEMS])
    more = len(errors) - MAX_LISTED_PROBLEMS
    return problems + (f"; and {more} more" if more > 0 else "")


def _problem(error: Mapping[str, Any]) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()))
    what = plain_message(error)
    return f"{where}: {what}" if where else what


def plain_message(error: Mapping[str, Any]) -> str:
    """A validation error's message without pydantic's `Value error, ` prefix."""
    message = str(error.get("msg", "invalid"))
    for prefix in PYDANTIC_PREFIXES:
        message = message.removeprefix(prefix)
    return message
