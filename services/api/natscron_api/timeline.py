"""The explained timeline of a scheduled job: each nominal slot in a range with what happened
to it and why, joined from three sources and guessing nothing:

- the slot maths (`natscron_shared.timing.slot_fates`): where each slot was due, or why it was
  no slot at all (a DST gap or fold, outside the active hours, `start_at` or `end_at`);
- the runs (`jobs` documents): a slot with a run fired, whatever else was recorded;
- the decision records (`decisions` documents): why a due slot has no run (merged or dropped
  by catch-up, skipped while paused, after `max_runs`), or why its run was skipped (overlap).

A due slot with neither a run nor a record is `no_record`; one not yet due is `upcoming`.
Runs that belong to no slot (triggers, retries, chained runs, a scheduled run the current spec
would not fire) are listed apart, a chained run with the parents' runs it ran after, as are
decisions about no slot (a parent's run that held back or dropped a chained run, or fired one
not listed), each with its why.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from natscron_shared.contract.decisions import DecisionKind
from natscron_shared.contract.enums import JobStatus, Trigger
from natscron_shared.contract.storage import DecisionDocument, JobDocument
from natscron_shared.timing.slot_fates import Fate, NominalSlot, SlotMove


class Outcome(StrEnum):
    FIRED = "fired"
    OVERLAP_SKIPPED = "overlap_skipped"
    NOT_A_SLOT = "not_a_slot"
    CATCHUP_MERGED = "catchup_merged"
    CATCHUP_DROPPED = "catchup_dropped"
    PAUSED = "paused"
    MAX_RUNS_REACHED = "max_runs_reached"
    UPCOMING = "upcoming"
    NO_RECORD = "no_record"


class ExplainedRun(BaseModel):
    """A run, as much as the timeline shows of it."""

    job_id: str
    trigger: str | None = None
    status: str | None = None
    scheduled_for: datetime | None = None
    fired_at: datetime | None = Field(default=None, description="when its request was made")
    lateness_seconds: float | None = Field(
        default=None, description="fired_at - scheduled_for: how late the ticker fired it"
    )
    started_at: datetime | None = None
    completed_at: datetime | None = None
    runner_id: str | None = None
    error_message: str | None = None
    why: str | None = Field(default=None, description="for a run that belongs to no slot")


class ExplainedDecision(BaseModel):
    """A decision record (`natscron_shared.contract.decisions.Decision`)."""

    kind: str
    at: datetime | None = None
    after: datetime | None = None
    until: datetime | None = None
    slot: datetime | None = None
    slots: int | None = None
    job_id: str | None = None
    cause_job_id: str | None = None
    note: str | None = None
    why: str | None = Field(default=None, description="for a decision about no slot")


class TimelineEntry(BaseModel):
    nominal: str = Field(description="the wall time it names, in the schedule's zone")
    nominal_at: datetime | None = Field(
        description="that wall time as an instant; null when a DST gap skips it"
    )
    second_pass: bool = Field(default=False, description="the repeat of a fall-back fold")
    fate: Fate = Field(description="what the slot maths make of it")
    slot_at: datetime | None = Field(description="when it was due; null if it was no slot")
    moved_by: list[SlotMove] = Field(default_factory=list)
    outcome: Outcome
    why: str
    run: ExplainedRun | None = None
    decision: ExplainedDecision | None = None


class Explanation(BaseModel):
    """`natscron schedules explain`: a scheduled job's slots in `[start, end)`."""

    scheduled_job_id: str
    timezone: str
    schedule: str | None = Field(description="the schedule in words")
    start: datetime
    end: datetime
    now: datetime
    spec_revision: int | None = Field(description="the KV revision of the spec explained")
    spec_stored_at: datetime | None = None
    notes: list[str] = Field(
        default_factory=list, description="what limits the explanation: the spec, the data kept"
    )
    counts: dict[Outcome, int] = Field(description="slots by outcome")
    slots: list[TimelineEntry]
    other_runs: list[ExplainedRun] = Field(
        description="runs in the range that belong to no slot (triggered, chained, retried...)"
    )
    other_decisions: list[ExplainedDecision] = Field(
        description="decisions about no slot of the range (a chain fired or held)"
    )


@dataclass(frozen=True)
class Recorded:
    """What the recorder holds about the range."""

    runs: Sequence[JobDocument]
    decisions: Sequence[DecisionDocument]


WINDOWED = (
    DecisionKind.PAUSED,
    DecisionKind.MAX_RUNS_REACHED,
    DecisionKind.CATCHUP_MERGED,
    DecisionKind.CATCHUP_DROPPED,
)
"""Decisions about the slots of a window, the first that covers a slot saying why."""
SLOT_RUNS = (Trigger.SCHEDULED.value, Trigger.BACKFILL.value)
"""Triggers of a slot's own run (its deterministic job id)."""


def build_entries(
    slots: Iterable[NominalSlot], recorded: Recorded, zone: ZoneInfo, now: datetime
) -> tuple[list[TimelineEntry], list[ExplainedRun], list[ExplainedDecision]]:
    """The slots explained, the runs left over, the decisions left over."""
    runs = {run["job_id"]: run for run in recorded.runs}
    slot_runs = [run for run in runs.values() if _slot_run(run)]
    by_slot = {_ms(run.get("scheduled_for")): run for run in slot_runs}
    by_nominal = {_ms(run.get("nominal_at")): run for run in slot_runs if run.get("nominal_at")}
    windows = _windows(recorded.decisions)
    by_job = {d["job_id"]: d for d in recorded.decisions if d.get("job_id")}
    used_runs: set[str] = set()
    used_decisions: set[str] = set()
    entries = []
    for slot in slots:
        due = None if slot.slot_at is None else _ms(slot.slot_at)
        run = None if due is None else by_slot.get(due) or by_nominal.get(_ms(slot.nominal_at))
        if run is not None:
            used_runs.add(run["job_id"])
            decision = by_job.get(run["job_id"])
            entries.append(_fired(slot, run, decision, zone))
            if decision is not None:
                used_decisions.add(decision["_id"])
            continue
        covering = None if due is None else _covering(windows, due)
        if covering is not None:
            used_decisions.add(covering["_id"])
        entries.append(_unfired(slot, covering, runs, zone, now))
    other_runs = []
    for run in recorded.runs:
        if run["job_id"] not in used_runs:
            decision = by_job.get(run["job_id"])
            if decision is not None:
                used_decisions.add(decision["_id"])
            other_runs.append(_run(run, _why_apart(run, decision)))
    other_decisions = [
        _decision(d, _decided_apart(d))
        for d in recorded.decisions
        if d["_id"] not in used_decisions and DecisionKind(d["kind"]) not in WINDOWED
    ]
    return entries, other_runs, other_decisions


def _slot_run(run: JobDocument) -> bool:
    return run.get("trigger") in SLOT_RUNS and run.get("scheduled_for") is not None


@dataclass(frozen=True)
class _Window:
    decision: DecisionDocument
    after: datetime | None
    until: datetime | None


def _windows(decisions: Sequence[DecisionDocument]) -> list[_Window]:
    """The windowed decisions, in the order `WINDOWED` ranks them. A pause left open (its
    closing record lost) ends where the next pause begins."""
    windowed = sorted(
        (d for d in decisions if d["kind"] in WINDOWED),
        key=lambda d: (WINDOWED.index(DecisionKind(d["kind"])), d["starts_at"]),
    )
    pauses = [d for d in windowed if d["kind"] == DecisionKind.PAUSED]
    windows = []
    for decision in windowed:
        until = decision.get("until")
        if decision["kind"] == DecisionKind.PAUSED and until is None:
            later = [p["starts_at"] for p in pauses if p["starts_at"] > decision["starts_at"]]
            until = min(later, default=None)
        windows.append(_Window(decision, decision.get("after"), until))
    return windows


def _covering(windows: list[_Window], slot_at: datetime) -> DecisionDocument | None:
    for window in windows:
        if (window.after is None or window.after < slot_at) and (
            window.until is None or slot_at <= window.until
        ):
            return window.decision
    return None


def _fired(
    slot: NominalSlot, run: JobDocument, decision: DecisionDocument | None, zone: ZoneInfo
) -> TimelineEntry:
    explained = _run(run)
    when = _local(explained.fired_at, zone)
    late = explained.lateness_seconds
    lateness = "" if late is None else f", {late:.3f} s after its slot"
    status = run.get("status") or "unknown"
    why = f"fired at {when}{lateness} as job {run['job_id']} ({status})"
    if run.get("trigger") == Trigger.BACKFILL.value:
        why = f"backfilled: {why}"
    moves = _moves(slot, zone)
    if moves:
        why = f"{moves}; {why}"
    outcome = Outcome.FIRED
    if decision is not None and decision["kind"] == DecisionKind.OVERLAP_SKIPPED:
        outcome = Outcome.OVERLAP_SKIPPED
        holder = decision.get("cause_job_id") or "another run"
        why += f"; skipped by the overlap policy while job {holder} ran"
    elif status == JobStatus.SKIPPED.value and run.get("error_message"):
        why += f": {run['error_message']}"
    return _entry(slot, outcome, why, explained, decision)


def _unfired(
    slot: NominalSlot,
    decision: DecisionDocument | None,
    runs: dict[str, JobDocument],
    zone: ZoneInfo,
    now: datetime,
) -> TimelineEntry:
    if not slot.fate.fires:
        return _entry(slot, Outcome.NOT_A_SLOT, _no_slot(slot, zone))
    assert slot.slot_at is not None
    due = _local(slot.slot_at, zone)
    if decision is None:
        if slot.slot_at > now:
            return _entry(slot, Outcome.UPCOMING, f"due at {due}")
        return _entry(
            slot, Outcome.NO_RECORD, f"due at {due}: no run and no decision recorded about it"
        )
    kind = DecisionKind(decision["kind"])
    outcome, why = _decided(kind, decision, runs, zone)
    return _entry(slot, outcome, f"due at {due}: {why}", decision=decision)


def _decided(
    kind: DecisionKind, decision: DecisionDocument, runs: dict[str, JobDocument], zone: ZoneInfo
) -> tuple[Outcome, str]:
    after = _local(decision.get("after"), zone)
    into = decision.get("job_id")
    if kind is DecisionKind.PAUSED:
        until = decision.get("until")
        span = f"paused from {after} to {_local(until, zone)}" if until else f"paused since {after}"
        note = decision.get("note")
        return Outcome.PAUSED, f"skipped, {span}" + (f" ({note})" if note else "")
    if kind is DecisionKind.MAX_RUNS_REACHED:
        last = f" by job {into}" if into else ""
        return Outcome.MAX_RUNS_REACHED, f"not fired: {decision.get('note')}{last}"
    missed = f"missed after {after} (the ticker handled nothing between)"
    note = decision.get("note") or "catch-up"
    if kind is DecisionKind.CATCHUP_MERGED:
        run = runs.get(into or "")
        fired = "" if run is None else f", fired at {_local(run.get('created_at'), zone)}"
        return Outcome.CATCHUP_MERGED, f"{missed}; merged by {note} into job {into}{fired}"
    return Outcome.CATCHUP_DROPPED, f"{missed}; dropped by {note}"


def _no_slot(slot: NominalSlot, zone: ZoneInfo) -> str:
    wall = f"{slot.wall:%Y-%m-%d %H:%M:%S}"
    if slot.fate is Fate.DST_GAP_SKIPPED:
        return f"{wall} does not happen in {zone.key} (spring forward): the DST rule skips it"
    if slot.fate is Fate.DST_FOLD_SKIPPED:
        return (
            f"{wall} happens twice in {zone.key} (fall back): the DST rule fires only the"
            " first pass"
        )
    at = _local(slot.nominal_at, zone)
    if slot.fate is Fate.BEFORE_START:
        return f"{at} is before start_at"
    if slot.fate is Fate.AFTER_END:
        return f"{at} is after end_at"
    return f"{at} is outside the active hours"


def _moves(slot: NominalSlot, zone: ZoneInfo) -> str:
    """How its slot moved from its wall time, in words."""
    words = []
    if SlotMove.DST_GAP in slot.moves:
        words.append(
            f"moved from {slot.wall:%H:%M:%S} to {_local(slot.nominal_at, zone)} by the DST"
            f" rule ({slot.wall:%H:%M:%S} does not happen that day)"
        )
    if SlotMove.JITTER in slot.moves and slot.slot_at is not None:
        delay = (slot.slot_at - slot.nominal_at).total_seconds()
        words.append(f"jittered {delay:.3f} s to {_local(slot.slot_at, zone)}")
    return "; ".join(words)


def _why_apart(run: JobDocument, decision: DecisionDocument | None) -> str:
    """Why a run belongs to no slot of the range, from its document and its decision."""
    trigger = run.get("trigger")
    if trigger == Trigger.CHAIN.value:
        return _chained(run, decision)
    if run.get("retry_of"):
        return f"a retry of job {run.get('retry_of')}"
    if trigger in SLOT_RUNS:
        return (
            f"a {trigger} run for {run.get('scheduled_for')}, which is no slot of the current"
            " spec in the range (the spec changed since?)"
        )
    return f"a {trigger} run"


def _chained(run: JobDocument, decision: DecisionDocument | None) -> str:
    """A chained run: the parents' runs it ran after, and whose end started it."""
    parents = run.get("chained_from") or []
    cause = None
    if decision is not None and decision["kind"] == DecisionKind.CHAIN_FIRED:
        cause = decision.get("cause_job_id")  # not an overlap skip's holder
    if not parents:
        return f"chained from job {cause}" if cause else "a chain run"
    jobs = "job" if len(parents) == 1 else "jobs"
    why = f"chained from {jobs} {', '.join(parents)}"
    if cause and len(parents) > 1:
        why += f": the end of job {cause} completed them"
    return why


def _decided_apart(decision: DecisionDocument) -> str | None:
    """Why, for a decision about no slot of the range."""
    kind = DecisionKind(decision["kind"])
    cause, job_id, note = decision.get("cause_job_id"), decision.get("job_id"), decision.get("note")
    because = f": {note}" if note else ""
    if kind is DecisionKind.CHAIN_HELD:
        return f"job {cause} ended and started no chained run{because}"
    if kind is DecisionKind.CHAIN_DROPPED:
        return f"job {cause} ended; the chained run {job_id} was dropped{because}"
    if kind is DecisionKind.CHAIN_FIRED:
        return f"job {cause} ended and started the chained run {job_id} ({note or 'chained'})"
    if kind is DecisionKind.OVERLAP_SKIPPED:
        return f"job {job_id} skipped by the overlap policy while job {cause} ran"
    return None


def _entry(
    slot: NominalSlot,
    outcome: Outcome,
    why: str,
    run: ExplainedRun | None = None,
    decision: DecisionDocument | None = None,
) -> TimelineEntry:
    return TimelineEntry(
        nominal=slot.wall.isoformat(),
        nominal_at=slot.instant,
        second_pass=slot.second_pass,
        fate=slot.fate,
        slot_at=slot.slot_at,
        moved_by=list(slot.moves),
        outcome=outcome,
        why=why,
        run=run,
        decision=None if decision is None else _decision(decision),
    )


def _run(run: JobDocument, why: str | None = None) -> ExplainedRun:
    scheduled_for, fired_at = run.get("scheduled_for"), run.get("created_at")
    lateness = None
    if scheduled_for is not None and fired_at is not None:
        lateness = (fired_at - scheduled_for).total_seconds()
    return ExplainedRun(
        job_id=run["job_id"],
        trigger=run.get("trigger"),
        status=run.get("status"),
        scheduled_for=scheduled_for,
        fired_at=fired_at,
        lateness_seconds=lateness,
        started_at=run.get("started_at"),
        completed_at=run.get("completed_at"),
        runner_id=run.get("runner_id"),
        error_message=run.get("error_message"),
        why=why,
    )


def _decision(decision: DecisionDocument, why: str | None = None) -> ExplainedDecision:
    return ExplainedDecision(
        kind=decision["kind"],
        at=decision.get("at"),
        after=decision.get("after"),
        until=decision.get("until"),
        slot=decision.get("slot"),
        slots=decision.get("slots"),
        job_id=decision.get("job_id"),
        cause_job_id=decision.get("cause_job_id"),
        note=decision.get("note"),
        why=why,
    )


def _ms(moment: datetime | None) -> datetime | None:
    """To the millisecond, as MongoDB keeps times (the driver drops the rest)."""
    return None if moment is None else moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _local(moment: datetime | None, zone: ZoneInfo) -> str:
    """An instant as the schedule's zone shows it, offset included."""
    if moment is None:
        return "an unknown time"
    return moment.astimezone(zone).isoformat(timespec="milliseconds")
