"""A source run's outcome as natscron's: its final status and its duration."""

from datetime import datetime

from natscron.migration.legacy_values import LegacyValueError
from natscron_shared.contract.enums import JobStatus

FINISHED = {s.value: s for s in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)}
UNFINISHED = ("pending", "running")


def finished_status(value: object) -> JobStatus:
    """`completed`, `failed` or `cancelled` (any case); a run that has not finished, or
    any other value, is a `LegacyValueError`."""
    if isinstance(value, str) and value.lower() in UNFINISHED:
        raise LegacyValueError(
            f"status {value!r}: the run has not finished in the legacy system, and nothing in"
            " natscron would ever finish it; migrate again once it has"
        )
    if not isinstance(value, str) or value.lower() not in FINISHED:
        raise LegacyValueError(
            f"status {value!r} is not one of {', '.join([*FINISHED, *UNFINISHED])}"
        )
    return FINISHED[value.lower()]


def duration_ms(started_at: datetime | None, completed_at: datetime | None) -> int | None:
    if started_at is None or completed_at is None:
        return None
    return max(0, round((completed_at - started_at).total_seconds() * 1000))
