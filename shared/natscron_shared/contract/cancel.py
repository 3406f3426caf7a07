"""`jobs.cancel`: stop a job wherever it runs, or keep it from starting.

A cancel is a marker in KV `cancels` (key: the job id), so it reaches a job whether it is
running now (its runner watches the bucket and cancels the scrape) or still queued (the
runner that takes it ends it `cancelled` without running it). Any runner answers the
request (queue group `runners`), saying where it found the job.
"""

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from natscron_shared.contract.models import JobId

MAX_REASON_CHARS = 500

Found = Literal["running", "queued", "finished", "unknown"]
"""running: a runner holds it now; queued: waiting in JOBS (or to be redelivered);
finished: it already ended, nothing was cancelled; unknown: no event of it was seen (it
will still be refused if it arrives while the marker lives)."""


class CancelRequest(BaseModel):
    """`jobs.cancel`: stop a job that runs, or keep a queued one from running."""

    model_config = ConfigDict(extra="forbid")

    job_id: JobId
    reason: str | None = Field(default=None, max_length=MAX_REASON_CHARS)
    by: str | None = Field(default=None, max_length=200, description="who asked; free text")


class CancelReply(BaseModel):
    """Where the runner that answered found the job; the cancel stands in every case."""

    job_id: str
    found: Found
    message: str


class CancelMarker(BaseModel):
    """The value stored in KV `cancels` under the job id."""

    job_id: str
    reason: str | None = None
    by: str | None = None
    at: AwareDatetime
