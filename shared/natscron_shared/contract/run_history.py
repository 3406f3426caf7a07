"""A scheduled job's run history, advanced by each batch of runs that just finished.

Applied once per batch of runs, each run counted exactly once: by the recorder's flush, in
one update guarded by the flush's id (live runs), and by `natscron migrate` in the
transaction that marks the runs counted (migrated ones). The cost per batch does not
depend on how many runs came before:

- `run_count` grows by the batch's finished runs;
- `last_run_*` follow the run that finished last (by `completed_at`);
- `consecutive_failures` counts failed runs that finished after the latest completed
  one (cancelled runs neither count nor reset). Runs may be recorded out of order, so
  the document keeps `last_completed_at` and `last_failed_at`; only when a completed run
  lands before an already counted failure must the failures after it be counted again,
  a query bounded by those failures, not by the history.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from natscron_shared.contract.enums import JobStatus

HISTORY_FIELDS = (
    "run_count",
    "last_run_at",
    "last_run_status",
    "last_run_job_id",
    "consecutive_failures",
    "last_completed_at",
    "last_failed_at",
)


@dataclass(frozen=True)
class FinishedRun:
    job_id: str
    status: JobStatus
    completed_at: datetime


FailuresAfter = Callable[[datetime], Awaitable[int]]
"""Counts the stored failed runs of the scheduled job that finished after a moment."""


def _latest(moments: list[datetime | None]) -> datetime | None:
    present = [moment for moment in moments if moment is not None]
    return max(present) if present else None


async def advance(
    stored: dict[str, Any], runs: list[FinishedRun], failures_after: FailuresAfter
) -> dict[str, Any]:
    """The history fields after `runs` (all newly finished, of one scheduled job)."""
    runs = sorted(runs, key=lambda run: run.completed_at)
    history = {name: stored.get(name) for name in HISTORY_FIELDS}
    history["run_count"] = int(history["run_count"] or 0) + len(runs)
    newest = runs[-1]
    if history["last_run_at"] is None or newest.completed_at >= history["last_run_at"]:
        history.update(
            last_run_at=newest.completed_at,
            last_run_status=newest.status.value,
            last_run_job_id=newest.job_id,
        )
    completed_before = history["last_completed_at"]
    failed_before = history["last_failed_at"]
    completions = [r.completed_at for r in runs if r.status is JobStatus.COMPLETED]
    failures = [r.completed_at for r in runs if r.status is JobStatus.FAILED]
    history["last_completed_at"] = _latest([completed_before, *completions])
    history["last_failed_at"] = _latest([failed_before, *failures])
    latest_completion = history["last_completed_at"]
    if latest_completion is None or latest_completion == completed_before:
        new_failures = [t for t in failures if completed_before is None or t > completed_before]
        history["consecutive_failures"] = int(history["consecutive_failures"] or 0) + len(
            new_failures
        )
    elif failed_before is not None and failed_before > latest_completion:
        history["consecutive_failures"] = await failures_after(latest_completion)
    else:
        history["consecutive_failures"] = sum(1 for t in failures if t > latest_completion)
    return history
