"""Reading a job's events back from the EVENTS stream (one subject per job)."""

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from pydantic import ValidationError

from natscron_shared.contract import names
from natscron_shared.contract.messages import JobEvent


async def last_job_event(js: JetStreamContext, job_id: str) -> JobEvent | None:
    """The newest event of the job, or None if EVENTS has none (or it is unreadable)."""
    try:
        message = await js.get_last_msg(names.STREAM_EVENTS, names.job_event_subject(job_id))
    except NotFoundError:
        return None
    try:
        return JobEvent.model_validate_json(message.data or b"")
    except ValidationError:
        return None
