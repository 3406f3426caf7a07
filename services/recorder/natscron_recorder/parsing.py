"""From an EVENTS, ITEMS or DECISIONS message to its model, or the reason it can never be stored.

BSON limits (integers beyond 64 bits, keys MongoDB refuses) are checked here, one
message at a time, so an unstorable message is set aside before its batch's transaction
instead of failing it for every other message."""

from collections.abc import Mapping
from datetime import UTC, datetime

import bson
from bson.errors import InvalidDocument
from nats.aio.msg import Msg
from pydantic import BaseModel, ValidationError

from natscron_recorder.attempts import attempt_fields
from natscron_shared.contract import names
from natscron_shared.contract.decisions import Decision
from natscron_shared.contract.job_fields import job_fields
from natscron_shared.contract.messages import ItemBatch, JobEvent, ScheduleEvent, bad_message_reason

Stored = JobEvent | ScheduleEvent | ItemBatch | Decision
MODELS: tuple[
    tuple[str, type[JobEvent] | type[ScheduleEvent] | type[ItemBatch] | type[Decision]], ...
] = (
    (f"{names.JOBS_EVENTS_PREFIX}.", JobEvent),
    (f"{names.SCHEDULED_JOBS_EVENTS_PREFIX}.", ScheduleEvent),
    (f"{names.ITEMS_PREFIX}.", ItemBatch),
    (f"{names.DECISIONS_PREFIX}.", Decision),
)
KINDS: dict[type[BaseModel], str] = {
    JobEvent: "job_event",
    ScheduleEvent: "schedule_event",
    ItemBatch: "items",
    Decision: "decision",
}


class BadMessageError(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def _bson_document(message: Stored) -> Mapping[str, object]:
    if isinstance(message, JobEvent):
        ended = message.ended_attempt
        attempts = [] if ended is None else [attempt_fields(ended)]
        return {**job_fields(message, datetime.now(UTC)), "attempts": attempts}
    if isinstance(message, ItemBatch):
        return {"items": [item.data for item in message.items]}
    return {}


def parse_message(msg: Msg) -> Stored:
    model = next((m for prefix, m in MODELS if msg.subject.startswith(prefix)), None)
    if model is None:
        raise BadMessageError("unknown_subject", "no writer for this subject")
    try:
        message: Stored = model.model_validate_json(msg.data)
    except ValidationError as exc:
        details = exc.errors(include_url=False, include_input=False)[:3]
        raise BadMessageError(bad_message_reason(exc), str(details)) from exc
    try:
        bson.encode(_bson_document(message))
    except (InvalidDocument, OverflowError) as exc:
        raise BadMessageError("unstorable", f"{type(exc).__name__}: {exc}") from exc
    return message
