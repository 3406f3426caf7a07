"""The timeline's words for a chained schedule, without servers: a chained run names the
parent runs it ran after (and, for a fan-in, whose end completed them), whatever other record
is about it; a parent's run that started none is an other decision with its why."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from natscron_api.timeline import Recorded, build_entries
from natscron_shared.contract.decisions import Decision, DecisionKind
from natscron_shared.contract.storage import DecisionDocument, JobDocument

T0 = datetime(2026, 11, 25, 12, tzinfo=UTC)


def chained(job_id: str, *parents: str) -> JobDocument:
    return {
        "job_id": job_id,
        "scheduled_job_id": "c",
        "trigger": "chain",
        "status": "completed",
        "created_at": T0,
        "chained_from": list(parents),
    }


def document(kind: DecisionKind, **fields: str) -> DecisionDocument:
    decision = Decision(scheduled_job_id="c", kind=kind, at=T0, **fields)
    return {
        "_id": decision.key,
        "scheduled_job_id": "c",
        "kind": kind.value,
        "at": T0,
        "starts_at": T0,
        "ends_at": T0,
        "job_id": decision.job_id,
        "cause_job_id": decision.cause_job_id,
        "note": decision.note,
    }


Whys = tuple[list[str | None], list[tuple[str, str | None]]]
"""The other runs' whys, the other decisions' kinds and whys."""


def explained(runs: list[JobDocument], decisions: list[DecisionDocument]) -> Whys:
    _, other_runs, other_decisions = build_entries(
        [], Recorded(runs, decisions), ZoneInfo("UTC"), T0 + timedelta(hours=1)
    )
    return [r.why for r in other_runs], [(d.kind, d.why) for d in other_decisions]


def test_a_fan_in_run_names_its_parents_runs_and_the_end_that_completed_them() -> None:
    fired = document(DecisionKind.CHAIN_FIRED, job_id="c1", cause_job_id="b1", note="after a1, b1")
    assert explained([chained("c1", "a1", "b1")], [fired]) == (
        ["chained from jobs a1, b1: the end of job b1 completed them"],
        [],
    )


def test_a_chained_run_skipped_by_overlap_does_not_take_the_holder_for_its_parent() -> None:
    skipped = document(DecisionKind.OVERLAP_SKIPPED, job_id="c2", cause_job_id="c1")
    assert explained([chained("c2", "a2", "b2")], [skipped]) == (
        ["chained from jobs a2, b2"],
        [],
    )


def test_held_dropped_and_unlisted_fired_decisions_say_why() -> None:
    held = document(DecisionKind.CHAIN_HELD, cause_job_id="a3", note="waiting for a run of b")
    dropped = document(
        DecisionKind.CHAIN_DROPPED, job_id="c4", cause_job_id="b4", note="c is paused"
    )
    fired = document(DecisionKind.CHAIN_FIRED, job_id="c5", cause_job_id="b5", note="after b5")
    assert explained([], [held, dropped, fired]) == (
        [],
        [
            ("chain_held", "job a3 ended and started no chained run: waiting for a run of b"),
            ("chain_dropped", "job b4 ended; the chained run c4 was dropped: c is paused"),
            ("chain_fired", "job b5 ended and started the chained run c5 (after b5)"),
        ],
    )
