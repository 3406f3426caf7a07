"""One parent finish applied to one child's `ChainState`: a pure function, so the leader
that applies it and a leader that applies it again after a failover decide the same.

- A finish already applied (its CHAINS sequence is at or below what the state has seen
  for its parent or for the last chained run, or its run is the one the state holds)
  changes nothing.
- A run that does not qualify for the child's `on` is held: nothing is kept of it.
- Otherwise it becomes its parent's newest run; once every parent has one newer than the
  last chained run, the child gets one run, its id made of those runs. A child that is not
  active has that run dropped, and its parents' runs count as used all the same.
"""

from dataclasses import dataclass
from datetime import datetime

from natscron_shared.contract.chains import ChainState, ChildRun, ParentFinish, ParentRun
from natscron_shared.contract.enums import ScheduledJobStatus
from natscron_shared.contract.job_ids import chained_job_id
from natscron_shared.contract.models import ScheduledJob
from natscron_ticker.chain_decisions import ChainDecision, ChainDecisionKind


@dataclass(frozen=True)
class ChainStep:
    state: ChainState | None
    """The state to store (compare-and-set); None: nothing changes."""
    decision: ChainDecision | None
    """None for a finish applied before."""
    run: ChildRun | None = None
    """The run to publish once `state` is stored."""


def advance(
    state: ChainState,
    child: ScheduledJob,
    finish: ParentFinish,
    sequence: int,
    parents: list[str],
    now: datetime,
) -> ChainStep:
    """`finish`, at `sequence` in CHAINS, applied to `child`'s state; `parents` are the
    child's parents that exist (the finishing one among them), in the order it names them."""
    parent = finish.scheduled_job_id
    link = child.link_to(parent)
    assert link is not None, f"{child.scheduled_job_id} does not run after {parent}"
    known = state.parents.get(parent)
    if sequence <= state.chained_through or (
        known is not None and (known.sequence >= sequence or known.job_id == finish.job_id)
    ):
        return ChainStep(None, None)

    def decided(kind: ChainDecisionKind, reason: str, job_id: str | None = None) -> ChainDecision:
        return ChainDecision(
            kind, child.scheduled_job_id, parent, finish.job_id, reason, now, job_id
        )

    if not link.on.qualifies(finish.status):
        reason = (
            f"the run ended {finish.status.value};"
            f" {child.scheduled_job_id} runs after its {link.on.value}"
        )
        return ChainStep(None, decided(ChainDecisionKind.HELD, reason))
    run = ParentRun(
        job_id=finish.job_id,
        status=finish.status,
        finished_at=finish.finished_at,
        sequence=sequence,
    )
    updated = state.model_copy(update={"parents": {**state.parents, parent: run}})
    waiting = [p for p in parents if not updated.ready(p)]
    if waiting:
        reason = f"waiting for a run of {', '.join(waiting)}"
        return ChainStep(updated, decided(ChainDecisionKind.HELD, reason))
    chained_from = [updated.parents[p].job_id for p in parents]
    job_id = chained_job_id(child.scheduled_job_id, chained_from, updated.newest_finish(parents))
    chained = ChildRun(job_id=job_id, chained_from=chained_from, created_at=now)
    if child.status is not ScheduledJobStatus.ACTIVE:
        reason = f"{child.scheduled_job_id} is {child.status.value}: its chained run is dropped"
        used = updated.model_copy(update={"chained_through": sequence})
        return ChainStep(used, decided(ChainDecisionKind.DROPPED, reason, job_id))
    firing = updated.model_copy(update={"chained_through": sequence, "firing": chained})
    reason = "after " + ", ".join(chained_from)
    return ChainStep(firing, decided(ChainDecisionKind.FIRED, reason, job_id), chained)
