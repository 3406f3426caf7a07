"""The command's exit statuses, and which error codes lead to which."""

from enum import IntEnum

from natscron_shared.contract.errors import BadRequestError, NatscronError


class Exit(IntEnum):
    OK = 0
    FAILURE = 1
    """NATS, the API or a service is unavailable, or anything else went wrong."""
    USAGE = 2
    """A bad option, argument, file or setting: the fix is in the caller's hands."""
    NOT_FOUND = 3
    """No such scheduled job or job."""
    CONFLICT = 4
    """The current state does not allow it: already exists, already paused, not retryable,
    a paused schedule backfilled, a chain broken."""


EXIT_HELP = (
    "Exit statuses: 0 ok, 1 error (NATS, the API or a service unavailable), 2 bad usage or"
    " input, 3 not found, 4 conflict with the current state."
)
NOT_FOUND_CODES = frozenset({"unknown_scheduled_job", "unknown_job", "not_found"})
CONFLICT_CODES = frozenset(
    {
        "already_exists",
        "invalid_state",
        "not_retryable",
        "not_active",
        "overlap_policy",
        "invalid_chain",
    }
)
USAGE_CODES = frozenset(
    {
        "bad_request",
        "malformed_json",
        "invalid_request",
        "invalid_cursor",
        "invalid_job",
        "unknown_scraper",
        "invalid_params",
        "message_too_large",
        "invalid_range",
        "too_many_slots",
    }
)


def exit_of(error: NatscronError) -> Exit:
    if error.code in NOT_FOUND_CODES:
        return Exit.NOT_FOUND
    if error.code in CONFLICT_CODES:
        return Exit.CONFLICT
    if isinstance(error, BadRequestError) or error.code in USAGE_CODES:
        return Exit.USAGE
    return Exit.FAILURE
