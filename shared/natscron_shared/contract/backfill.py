"""`jobs.backfill`: publish the past slots of a scheduled job that never ran.

The request names a scheduled job and a range of past instants; any ticker answers. The
slots considered are the schedule's own slots in `[start, end]` (both ends included),
computed as the ticker computes them for firing (`schedule.slots_between`: time zone, DST
rules, intervals, active hours, `start_at`/`end_at`, jitter). A slot whose job already has
an event in EVENTS is skipped; every other one is published with the job id a normal fire
of that slot gets (and so the same `Nats-Msg-Id`), `trigger: backfill`, and its `pending`
event, on the `normal` lane whatever the schedule's priority, so a long backfill never
holds up the `immediate` lane. Errors reply `ErrorReply` (`messages.py`), as `jobs.trigger`
does; the codes particular to backfill are the errors below.
"""

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from natscron_shared.contract.errors import BadRequestError, NatscronError
from natscron_shared.contract.models import Identifier

MAX_BACKFILL_SLOTS = 1000
"""Slots one request may consider; a wider range is refused whole, nothing published."""


class BackfillRequest(BaseModel):
    """Publish the slots of `scheduled_job_id` in `[start, end]` that have no run yet."""

    model_config = ConfigDict(extra="forbid")

    scheduled_job_id: Identifier
    start: AwareDatetime = Field(description="the first instant of the range, included")
    end: AwareDatetime = Field(
        description="the last instant of the range, included; not after the ticker's now"
    )
    dry_run: bool = Field(
        default=False, description="compute and report the slots, publish nothing"
    )

    @model_validator(mode="after")
    def _ordered(self) -> "BackfillRequest":
        if self.start >= self.end:
            raise ValueError(
                f"start ({self.start.isoformat()}) must be before end ({self.end.isoformat()})"
            )
        return self


class BackfillReply(BaseModel):
    scheduled_job_id: str
    slots: list[datetime] = Field(description="every slot of the range, oldest first")
    published: int = Field(description="slots published as new jobs (0 on a dry run)")
    existing: list[datetime] = Field(
        default_factory=list,
        description="the slots whose job already had an event in EVENTS: they are not run again",
    )
    skipped_existing: int = Field(
        description="slots that already had a run: an event in EVENTS, or a run request"
        " JetStream already held (duplicate msg id)"
    )
    dry_run: bool
    message: str


class InvalidRangeError(BadRequestError):
    """The range ends in the future, or starts before EVENTS' history could tell which
    slots already ran."""

    code = "invalid_range"


class TooManySlotsError(BadRequestError):
    code = "too_many_slots"


class NotActiveError(NatscronError):
    """Only an active schedule is backfilled: a paused one was stopped for a reason."""

    code = "not_active"


class OverlapPolicyError(NatscronError):
    """A `forbid` or `replace` schedule gets one backfilled slot at a time: published
    together, its runs would overlap, and all but one would end skipped (or cancelled)."""

    code = "overlap_policy"
