"""One parent finish applied to one child's `ChainState`: a pure function, so the leader
that applies it and a leader that applies it again after a failover decide the same.

- A finish already applied (its CHAINS sequence is at or below what the state has seen
  for its parent or for the last chained run, or its run is the one the state holds)
  changes nothing; its decision is made again from the state while the state still shows
  it, so one lost with a leader that died after storing the state is published after all
  (and merged with the first, if that was not lost: the same key).
- A run that does not qualify for the child's `on` is held: nothing is kept of it.
- Otherwise it becomes its parent's newest run; once every parent has one newer than the
  last chained run, the child gets one run, its id made of those runs. A child that is not
  active has that run dropped, and its parents' runs count as used all the same.

Each decision is a `Decision` record about the child (`chain_fired`, `chain_held`,
`chain_dropped`), the parent's run its `cause_job_id`, the chained run its `job_id`.
"""

from dataclasses import dataclass
from datetime import datetime

from natscron_shared.contract.chains import ChainState, ChildRun, ParentFinish, ParentRun
from natscron_shared.contract.decisions import Decision, DecisionKind
from natscron_shared.contract.enums import ScheduledJobStatus
from natscron_shared.contract.job_ids import chained_job_id
from natscron_shared.contract.models import ScheduledJob


@dataclass(frozen=True)
class ChainStep:
    state: ChainState | None
    """The state to store (compare-and-set); None: nothing changes."""
    decision: Decision | None
    """None for a finish the state no longer shows (a newer run of its parent replaced it)."""
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
    decide = _Decider(child, finish, now)
    known = state.parents.get(parent)
    if sequence <= state.chained_through or (
        known is not None and (known.sequence >= sequence or known.job_id == finish.job_id)
    ):
        return ChainStep(None, _replayed(state, decide, parents))
    if not link.on.qualifies(finish.status):
        reason = (
            f"{parent}'s run ended {finish.status.value};"
            f" {child.scheduled_job_id} runs after its {link.on.value}"
        )
        return ChainStep(None, decide(DecisionKind.CHAIN_HELD, reason))
    run = ParentRun(
        job_id=finish.job_id,
        status=finish.status,
        finished_at=finish.finished_at,
        sequence=sequence,
    )
    updated = state.model_copy(update={"parents": {**state.parents, parent: run}})
    waiting = _waiting(updated, parents)
    if waiting:
        return ChainStep(updated, decide(DecisionKind.CHAIN_HELD, waiting))
    chained_from = [updated.parents[p].job_id for p in parents]
    job_id = chained_job_id(child.scheduled_job_id, chained_from, updated.newest_finish(parents))
    if child.status is not ScheduledJobStatus.ACTIVE:
        used = updated.model_copy(update={"chained_through": sequence})
        return ChainStep(used, decide(DecisionKind.CHAIN_DROPPED, _dropped(child), job_id))
    chained = ChildRun(job_id=job_id, chained_from=chained_from, created_at=now)
    firing = updated.model_copy(update={"chained_through": sequence, "firing": chained})
    return ChainStep(firing, decide.fired(chained), chained)


@dataclass(frozen=True)
class _Decider:
    """The decisions about `child` on `finish`."""

    child: ScheduledJob
    finish: ParentFinish
    now: datetime

    def __call__(self, kind: DecisionKind, note: str, job_id: str | None = None) -> Decision:
        return Decision(
            scheduled_job_id=self.child.scheduled_job_id,
            kind=kind,
            at=self.now,
            job_id=job_id,
            cause_job_id=self.finish.job_id,
            note=note,
        )

    def fired(self, run: ChildRun) -> Decision:
        return self(DecisionKind.CHAIN_FIRED, "after " + ", ".join(run.chained_from), run.job_id)


def _replayed(state: ChainState, decide: _Decider, parents: list[str]) -> Decision | None:
    """The decision a finish found applied made, as far as the state still shows it: held
    while its run waits for other parents', fired or dropped if it completed the last
    chained run. A run the state no longer holds (a newer run of its parent came), or one
    another parent's finish used, was decided on before that finish was delivered: None."""
    finish = decide.finish
    known = state.parents.get(finish.scheduled_job_id)
    if known is None or known.job_id != finish.job_id or known.sequence < state.chained_through:
        return None
    if known.sequence > state.chained_through:
        waiting = _waiting(state, parents)
        return decide(DecisionKind.CHAIN_HELD, waiting) if waiting else None
    last = state.firing or state.last_run
    if last is not None and finish.job_id in last.chained_from:
        return decide.fired(last)
    used = [p for p in parents if p in state.parents]
    job_id = chained_job_id(
        decide.child.scheduled_job_id,
        [state.parents[p].job_id for p in used],
        state.newest_finish(used),
    )
    return decide(DecisionKind.CHAIN_DROPPED, _dropped(decide.child), job_id)


def _waiting(state: ChainState, parents: list[str]) -> str:
    """Which parents have yet to run since the last chained run, in words ("": none)."""
    waiting = [p for p in parents if not state.ready(p)]
    return f"waiting for a run of {', '.join(waiting)}" if waiting else ""


def _dropped(child: ScheduledJob) -> str:
    if child.status is ScheduledJobStatus.ACTIVE:  # resumed since: the decision made again
        return f"{child.scheduled_job_id} was not active: its chained run was dropped"
    reason = f" ({child.paused_reason})" if child.paused_reason else ""
    return f"{child.scheduled_job_id} is {child.status.value}{reason}: its chained run is dropped"
