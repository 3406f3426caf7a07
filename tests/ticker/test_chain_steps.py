"""One parent finish applied to a child's chain state, as the leader does and a new leader
does again after a failover: the same finish twice changes nothing, fan-in waits for every
parent, a non-qualifying run is held, a paused child's run is dropped."""

from datetime import UTC, datetime, timedelta

from natscron_shared.contract.chains import ChainState, ParentFinish
from natscron_shared.contract.decisions import DecisionKind
from natscron_shared.contract.enums import JobStatus, Trigger
from natscron_shared.contract.models import ScheduledJob
from natscron_ticker.chain_steps import ChainStep, advance

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def child(*after: str, status: str = "active", on: str = "success") -> ScheduledJob:
    return ScheduledJob.model_validate(
        {
            "scheduled_job_id": "c",
            "name": "c",
            "scraper": "noop",
            "status": status,
            "after": [{"scheduled_job_id": p, "on": on} for p in after],
        }
    )


def finish(parent: str, job_id: str, status: JobStatus = JobStatus.COMPLETED) -> ParentFinish:
    return ParentFinish(
        scheduled_job_id=parent,
        job_id=job_id,
        trigger=Trigger.SCHEDULED,
        status=status,
        finished_at=NOW + timedelta(seconds=len(job_id)),
    )


def apply(state: ChainState, spec: ScheduledJob, done: ParentFinish, sequence: int) -> ChainStep:
    return advance(state, spec, done, sequence, spec.parents, NOW)


def stored(step: ChainStep) -> ChainState:
    """The state once its run, if any, is published and cleared."""
    assert step.state is not None
    if step.state.firing is None:
        return step.state
    return step.state.model_copy(update={"firing": None, "last_run": step.state.firing})


def test_one_parent_one_run_per_qualifying_finish_and_a_redelivery_changes_nothing() -> None:
    spec = child("a")
    first = apply(ChainState(), spec, finish("a", "a1"), 1)
    assert first.decision is not None and first.decision.kind is DecisionKind.CHAIN_FIRED
    assert first.run is not None and first.run.chained_from == ["a1"]
    assert first.state is not None and first.state.firing == first.run
    again = ChainStep(None, first.decision)  # published again, merged into the first
    assert apply(first.state, spec, finish("a", "a1"), 1) == again
    assert apply(stored(first), spec, finish("a", "a1"), 1) == again
    # The same run announced again later (a runner re-ran it past the duplicate window).
    assert apply(stored(first), spec, finish("a", "a1"), 7) == again
    second = apply(stored(first), spec, finish("a", "a2"), 2)
    assert second.run is not None and second.run.chained_from == ["a2"]
    assert second.run.job_id != first.run.job_id


def test_a_run_that_does_not_qualify_is_held_and_kept_nowhere() -> None:
    held = apply(ChainState(), child("a"), finish("a", "a1", JobStatus.FAILED), 1)
    assert held.state is None and held.run is None
    assert held.decision is not None and held.decision.kind is DecisionKind.CHAIN_HELD
    assert "ended failed" in (held.decision.note or "")
    skipped = apply(
        ChainState(), child("a", on="completion"), finish("a", "a1", JobStatus.SKIPPED), 1
    )
    assert skipped.run is None


def test_fan_in_runs_once_every_parent_ran_since_the_last_chained_run() -> None:
    spec = child("a", "b")
    state = ChainState()
    runs = []
    for sequence, (parent, job_id) in enumerate(
        [("a", "a1"), ("a", "a2"), ("b", "b1"), ("b", "b2"), ("a", "a3")], 1
    ):
        step = apply(state, spec, finish(parent, job_id), sequence)
        state = stored(step)
        if step.run is not None:
            runs.append(step.run.chained_from)
        elif step.decision is not None:
            assert step.decision.kind is DecisionKind.CHAIN_HELD
    assert runs == [["a2", "b1"], ["a3", "b2"]]


def test_a_paused_child_drops_the_run_and_its_parents_runs_count_as_used() -> None:
    spec = child("a", status="paused")
    dropped = apply(ChainState(), spec, finish("a", "a1"), 1)
    assert dropped.run is None
    assert dropped.decision is not None and dropped.decision.kind is DecisionKind.CHAIN_DROPPED
    assert dropped.decision.job_id is not None
    assert dropped.state is not None and dropped.state.chained_through == 1
    resumed = apply(dropped.state, child("a"), finish("a", "a2"), 2)
    assert resumed.run is not None and resumed.run.chained_from == ["a2"]


def test_a_finish_applied_again_makes_its_decision_again_while_the_state_shows_it() -> None:
    """A leader that stored the state and died before publishing the decision record leaves
    it to the next: the same record (the same key), which the recorder merges."""
    spec = child("a", "b")
    held = apply(ChainState(), spec, finish("a", "a1"), 1)
    assert held.decision is not None and held.decision.kind is DecisionKind.CHAIN_HELD
    assert held.decision.cause_job_id == "a1" and held.decision.job_id is None
    assert held.decision.note == "waiting for a run of b"
    assert apply(stored(held), spec, finish("a", "a1"), 1) == ChainStep(None, held.decision)

    fired = apply(stored(held), spec, finish("b", "b1"), 2)
    assert fired.run is not None and fired.decision is not None
    assert fired.decision.kind is DecisionKind.CHAIN_FIRED
    assert (fired.decision.job_id, fired.decision.cause_job_id) == (fired.run.job_id, "b1")
    assert fired.decision.note == "after a1, b1"
    assert apply(stored(fired), spec, finish("b", "b1"), 2) == ChainStep(None, fired.decision)
    # a1 was decided on (held) before b1 came; a run of a newer than a1 replaces it.
    assert apply(stored(fired), spec, finish("a", "a1"), 1) == ChainStep(None, None)
    newer = stored(apply(stored(fired), spec, finish("a", "a2"), 3))
    assert apply(newer, spec, finish("a", "a1"), 1) == ChainStep(None, None)


def test_a_dropped_run_is_decided_again_as_dropped_even_once_the_child_resumed() -> None:
    paused = child("a", status="paused")
    dropped = apply(ChainState(), paused, finish("a", "a1"), 1)
    assert dropped.decision is not None and dropped.decision.kind is DecisionKind.CHAIN_DROPPED
    assert dropped.decision.note == "c is paused: its chained run is dropped"
    assert apply(stored(dropped), paused, finish("a", "a1"), 1) == ChainStep(None, dropped.decision)
    again = apply(stored(dropped), child("a"), finish("a", "a1"), 1).decision
    assert again is not None and again.key == dropped.decision.key
    assert again.note == "c was not active: its chained run was dropped"
