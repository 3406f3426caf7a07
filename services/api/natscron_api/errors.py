"""The API's errors: every failure has a stable `code` (the same in every face of the API)
and a sentence; `natscron_shared.contract.errors.status_of` maps a code to its HTTP status.

Errors raised by the contract (`natscron_shared.contract.errors`, the catalogue check) and error
replies from `jobs.trigger` / `jobs.cancel` keep their codes, so a client sees the same
`unknown_scraper` whether it asked NATS or HTTP.
"""

from natscron_shared.contract.errors import CodedError


class ApiError(CodedError):
    """A refusal of the API's own."""


def unknown_scheduled_job(scheduled_job_id: str) -> ApiError:
    return ApiError("unknown_scheduled_job", f"no scheduled job with id {scheduled_job_id!r}")


def unknown_job(job_id: str) -> ApiError:
    return ApiError("unknown_job", f"no job with id {job_id!r}")
