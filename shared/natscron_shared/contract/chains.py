"""Chains: a schedule that runs after other schedules' runs (`after`), and what the
runner and the ticker exchange for it.

- The ticker marks the run requests of every schedule that others run after
  (`RunRequest.chain_parent`, known from the children's specs in its book).
- The runner that ends such a run publishes a `ParentFinish` on stream CHAINS,
  `chains.finished.<parent_id>`, `Nats-Msg-Id` the run's job id, after its final event and
  before it settles the run's message: a runner that dies in between runs it again.
- The leading ticker pulls CHAINS through one durable consumer, one message at a time, and
  for each child of the parent advances the child's `ChainState` in KV `chain_state`
  (compare-and-set on its revision): a child whose every parent has had a qualifying run
  since its last chained run gets one run, `trigger: chain`, its job id made of those runs
  (`job_ids.chained_job_id`). The message is acked only after that run is stored.

The state records the CHAINS sequence each parent run came with and the one that made (or,
for a paused child, dropped) the last chained run: a message delivered again (a leader that
died before its ack) finds itself recorded and changes nothing, and the one run a state
decided on (`firing`) is published before anything else is done for that child, so a leader
that died between deciding and publishing leaves it to the next.
"""

from datetime import datetime
from typing import Annotated, Self

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from natscron_shared.contract.enums import JobStatus, Trigger
from natscron_shared.contract.messages import JobEvent
from natscron_shared.contract.models import Identifier, JobId


def _final(status: JobStatus) -> JobStatus:
    if not status.is_terminal:
        raise ValueError(f"{status.value!r} is not a final status")
    return status


FinalStatus = Annotated[JobStatus, AfterValidator(_final)]


class ParentFinish(BaseModel):
    """The end of a run of a schedule others run after, on `chains.finished.<id>`."""

    model_config = ConfigDict(frozen=True)

    scheduled_job_id: Identifier
    job_id: JobId
    trigger: Trigger
    status: FinalStatus
    finished_at: AwareDatetime
    """The final event's `completed_at`, or its `at` for a run that ended unrun."""

    @classmethod
    def of(cls, event: JobEvent) -> Self | None:
        """The finish `event` announces: only the final event of a run marked
        `chain_parent`. Raises `pydantic.ValidationError` for a request none can be made of."""
        request = event.job
        if (
            not request.chain_parent
            or request.scheduled_job_id is None
            or not event.status.is_terminal
        ):
            return None
        return cls(
            scheduled_job_id=request.scheduled_job_id,
            job_id=request.job_id,
            trigger=request.trigger,
            status=event.status,
            finished_at=event.completed_at or event.at,
        )


class ParentRun(BaseModel):
    """A parent's newest qualifying run, as a child's state keeps it."""

    model_config = ConfigDict(frozen=True)

    job_id: JobId
    status: FinalStatus
    finished_at: AwareDatetime
    sequence: int = Field(ge=1)
    """Its `ParentFinish`'s sequence in CHAINS: what orders the runs of all parents."""


class ChildRun(BaseModel):
    """A chained run decided on: stored in the state before it is published."""

    model_config = ConfigDict(frozen=True)

    job_id: JobId
    chained_from: list[str]
    created_at: AwareDatetime


class ChainState(BaseModel):
    """KV `chain_state`, one per child: what its parents' runs have done for it."""

    model_config = ConfigDict(frozen=True)

    chained_through: int = Field(default=0, ge=0)
    """The CHAINS sequence of the parent finish that made (or dropped) the last chained
    run: a parent's run counts for the next only if it came after it."""
    parents: dict[str, ParentRun] = Field(default_factory=dict)
    firing: ChildRun | None = None
    """The chained run decided on and not yet known to be stored."""
    last_run: ChildRun | None = None
    """The last chained run stored (or dropped, while the child was paused)."""

    def ready(self, parent_id: str) -> bool:
        run = self.parents.get(parent_id)
        return run is not None and run.sequence > self.chained_through

    def newest_finish(self, parent_ids: list[str]) -> datetime:
        return max(self.parents[p].finished_at for p in parent_ids)
