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
  a query bounded by those failures, not by the history;
- `recent_runs` keeps the `RECENT_RUNS` runs that finished last (by `completed_at` to the
  millisecond, as MongoDB keeps it, then `job_id`), newest first: the run-history strip of a
  listing, read with the document rather than by a query per schedule. A function of the
  set of runs, so any order or batching of them ends in the same list.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
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
    "recent_runs",
)
RECENT_RUNS = 20


@dataclass(frozen=True)
class FinishedRun:
    job_id: str
    status: JobStatus
    completed_at: datetime
    duration_ms: int | None = None

    def recent(self) -> dict[str, Any]:
        """Its entry in `recent_runs` (`storage.RecentRunFields`)."""
        return {
            "job_id": self.job_id,
            "status": self.status.value,
            "completed_at": _stored(self.completed_at),
            "duration_ms": self.duration_ms,
        }


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
    history["recent_runs"] = _recent(history["recent_runs"] or [], runs)
    return history


def _stored(moment: datetime) -> datetime:
    """As MongoDB keeps it: UTC, to the millisecond (truncated, as BSON encodes it)."""
    return moment.astimezone(UTC).replace(microsecond=moment.microsecond // 1000 * 1000)


def _recent(stored: list[dict[str, Any]], runs: list[FinishedRun]) -> list[dict[str, Any]]:
    by_job = {entry["job_id"]: entry for entry in stored}
    by_job.update({run.job_id: run.recent() for run in runs})
    newest = sorted(
        by_job.values(),
        key=lambda entry: (_stored(entry["completed_at"]), entry["job_id"]),
        reverse=True,
    )
    return newest[:RECENT_RUNS]
