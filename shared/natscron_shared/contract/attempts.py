"""What a job keeps of each of its attempts, and of what its scraper reported.

The event that ends an attempt carries its `AttemptRecord`: a terminal event after a run
its own, a retry's `pending` event the one that failed. The recorder folds the records
into the job's `attempts` by attempt number, so the document keeps every attempt however
the events are batched, ordered or repeated.
"""

from pydantic import AwareDatetime, BaseModel, Field

from natscron_shared.contract.enums import JobStatus

MAX_TRACEBACK_LINES = 50
MAX_TRACEBACK_CHARS = 4096
"""A traceback keeps its last lines (the innermost frames and the error) within both."""
MAX_METADATA_BYTES = 16 * 1024
"""A scraper's metadata, as JSON; the runner refuses a bigger object (and counts it)."""
REFUSED_METADATA_KEY = "_refused"
"""The one key of the metadata stored in place of an object the runner refused: why."""


class AttemptRecord(BaseModel):
    """One attempt that ran: when, on which runner, and how it ended."""

    attempt: int = Field(ge=1)
    status: JobStatus = Field(
        description="`completed`, `failed` (also when it was retried) or `cancelled`"
    )
    runner_id: str | None = None
    started_at: AwareDatetime | None = None
    completed_at: AwareDatetime
    duration_ms: int | None = None
    error_type: str | None = None
    error_message: str | None = None
    traceback: str | None = Field(
        default=None,
        description=f"the last {MAX_TRACEBACK_LINES} lines, at most {MAX_TRACEBACK_CHARS}"
        " characters, of the formatted exception: no local variables",
    )
