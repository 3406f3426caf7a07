"""The API's errors: every failure has a stable `code` (the same in every face of the API)
and a sentence; `http_status` maps a code to its HTTP status.

Errors raised by the contract (`natscron_shared.contract.errors`, the catalogue check) and error
replies from `jobs.trigger` / `jobs.cancel` keep their codes, so a client sees the same
`unknown_scraper` whether it asked NATS or HTTP.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from natscron_shared.contract.errors import NatscronError

MAX_LISTED_PROBLEMS = 5
PYDANTIC_PREFIXES = ("Value error, ", "Assertion failed, ")


class ApiError(NatscronError):
    """An error whose code is chosen where it is raised."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def unknown_scheduled_job(scheduled_job_id: str) -> ApiError:
    return ApiError("unknown_scheduled_job", f"no scheduled job with id {scheduled_job_id!r}")


def unknown_job(job_id: str) -> ApiError:
    return ApiError("unknown_job", f"no job with id {job_id!r}")


def unavailable(message: str) -> ApiError:
    return ApiError("unavailable", message)


HTTP_STATUS_OF_CODE: dict[str, int] = {
    "malformed_json": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "unknown_scheduled_job": 404,
    "unknown_job": 404,
    "method_not_allowed": 405,
    "already_exists": 409,
    "invalid_state": 409,
    "not_retryable": 409,
    "no_runners": 409,
    "not_active": 409,
    "overlap_policy": 409,
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


def http_status(code: str) -> int:
    return HTTP_STATUS_OF_CODE.get(code, 502)


def problems_sentence(errors: Sequence[Mapping[str, Any]]) -> str:
    """Validation errors as one line: `field: what is wrong; ...`, the first few only."""
    problems = "; ".join(_problem(error) for error in errors[:MAX_LISTED_PROBLEMS])
    more = len(errors) - MAX_LISTED_PROBLEMS
    return problems + (f"; and {more} more" if more > 0 else "")


def _problem(error: Mapping[str, Any]) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()))
    what = _plain(str(error.get("msg", "invalid")))
    return f"{where}: {what}" if where else what


def _plain(message: str) -> str:
    for prefix in PYDANTIC_PREFIXES:
        message = message.removeprefix(prefix)
    return message
