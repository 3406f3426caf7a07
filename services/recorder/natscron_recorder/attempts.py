"""A job's `attempts`: the records of its ended attempts, folded by attempt number.

Each event that ends an attempt carries its record (`JobEvent.ended_attempt`); a batch
may hold several, and the stored document some already. Per attempt number the record
that ended last wins (equal ends are told apart by their content), and a job keeps its
newest `max_retries + 1` attempts. The list is thus a function of the set of records:
any batching, order or repetition of the events stores the same one, and a record
already stored changes nothing.
"""

from collections.abc import Iterable
from datetime import UTC, datetime

from natscron_shared.contract.attempts import AttemptRecord
from natscron_shared.contract.messages import JobEvent
from natscron_shared.contract.storage import AttemptFields


def stored_moment(moment: datetime) -> datetime:
    """As MongoDB keeps it: UTC, to the millisecond (truncated, as BSON encodes it)."""
    return moment.astimezone(UTC).replace(microsecond=moment.microsecond // 1000 * 1000)


def attempt_fields(record: AttemptRecord) -> AttemptFields:
    return {
        "attempt": record.attempt,
        "status": record.status.value,
        "runner_id": record.runner_id,
        "started_at": None if record.started_at is None else stored_moment(record.started_at),
        "completed_at": stored_moment(record.completed_at),
        "duration_ms": record.duration_ms,
        "error_type": record.error_type,
        "error_message": record.error_message,
        "traceback": record.traceback,
    }


def ended_attempts(events: Iterable[JobEvent]) -> dict[str, list[AttemptFields]]:
    """The attempt records the events carry, by job id."""
    records: dict[str, list[AttemptFields]] = {}
    for event in events:
        if event.ended_attempt is not None:
            records.setdefault(event.job.job_id, []).append(attempt_fields(event.ended_attempt))
    return records


def _order(fields: AttemptFields) -> tuple[datetime, str, str, str, str, str, int]:
    return (
        fields["completed_at"],
        fields["status"],
        fields["error_type"] or "",
        fields["error_message"] or "",
        fields["traceback"] or "",
        fields["runner_id"] or "",
        -1 if fields["duration_ms"] is None else fields["duration_ms"],
    )


def fold(
    stored: list[AttemptFields], records: list[AttemptFields], keep: int
) -> list[AttemptFields]:
    """`stored` with `records` folded in: oldest attempt first, the newest `keep`."""
    by_number: dict[int, AttemptFields] = {}
    for fields in (*stored, *records):
        known = by_number.get(fields["attempt"])
        if known is None or _order(fields) > _order(known):
            by_number[fields["attempt"]] = fields
    return [by_number[number] for number in sorted(by_number)[-keep:]]
