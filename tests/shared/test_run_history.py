"""`recent_runs`: the runs of a scheduled job that finished last, newest first, kept on its
document so a listing shows a run-history strip without a query per schedule."""

from datetime import UTC, datetime, timedelta

from natscron_shared.contract.enums import JobStatus
from natscron_shared.contract.run_history import RECENT_RUNS, FinishedRun, advance

T0 = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)


async def no_failures(after: datetime) -> int:
    return 0


def run(number: int, status: JobStatus = JobStatus.COMPLETED) -> FinishedRun:
    return FinishedRun(
        f"job-{number:03d}", status, T0 + timedelta(seconds=number, microseconds=999), number
    )


async def test_recent_runs_keep_the_newest_first_whatever_the_batches() -> None:
    runs = [run(n, JobStatus.FAILED if n % 3 == 0 else JobStatus.COMPLETED) for n in range(45)]
    at_once = await advance({}, runs, no_failures)
    history: dict[str, object] = {}
    for batch in (runs[30:], runs[:10], runs[10:30]):  # out of order
        history = await advance(history, batch, no_failures)
    assert history["recent_runs"] == at_once["recent_runs"]
    recent = at_once["recent_runs"]
    assert len(recent) == RECENT_RUNS
    assert [entry["job_id"] for entry in recent] == [f"job-{n:03d}" for n in range(44, 24, -1)]
    assert recent[0] == {
        "job_id": "job-044",
        "status": "completed",
        "completed_at": T0 + timedelta(seconds=44),  # to the millisecond, as MongoDB keeps it
        "duration_ms": 44,
    }
    assert [entry["status"] for entry in recent[:4]] == [
        "completed",
        "completed",
        "failed",
        "completed",
    ]


async def test_a_run_counted_again_is_not_listed_twice() -> None:
    once = await advance({}, [run(1), run(2)], no_failures)
    again = await advance(dict(once), [run(2)], no_failures)
    assert [entry["job_id"] for entry in again["recent_runs"]] == ["job-002", "job-001"]
