"""The fields of a `jobs` document that one event of its job sets: what the recorder
writes, and what the API shows of a job MongoDB does not have yet (its newest event).

Every event carries the whole request and every field of its attempt (absent ones as
None), so these are a function of the event alone.
"""

from datetime import datetime

from natscron_shared.contract.messages import JobEvent
from natscron_shared.contract.storage import FINAL, JobDocument


def progress(event: JobEvent) -> int:
    """`(attempt, status.rank)` as one number; `FINAL` once terminal."""
    if event.status.is_terminal:
        return FINAL
    return event.attempt * 3 + event.status.rank


def job_fields(event: JobEvent, now: datetime) -> JobDocument:
    """Every field an event sets (not the item batches' two)."""
    request = event.job
    fields: JobDocument = {
        "job_id": request.job_id,
        "scheduled_job_id": request.scheduled_job_id,
        "trigger": request.trigger.value,
        "priority": request.priority.value,
        "scheduled_for": request.scheduled_for,
        "nominal_at": request.nominal_at,
        "moved_by": [move.value for move in request.moved_by],
        "created_at": request.created_at,
        "scraper": request.scraper,
        "params": request.params,
        "retry_of": request.retry_of,
        "not_before": request.not_before,
        "status": event.status.value,
        "attempt": event.attempt,
        "progress": progress(event),
        "updated_at": now,
        "runner_id": event.runner_id,
        "started_at": event.started_at,
        "completed_at": event.completed_at,
        "duration_ms": event.duration_ms,
        "properties_scraped": event.properties_scraped,
        "item_batches": event.item_batches,
        "skipped_pages": event.skipped_pages,
        "error_message": event.error_message,
        "error_type": event.error_type,
        "cancelled_by": event.cancelled_by,
        "metadata": event.metadata,
    }
    if request.chained_from is not None:
        fields["chained_from"] = request.chained_from
    return fields
