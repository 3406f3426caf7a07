"""`jobs get`: the recorder's document of a job, or, while MongoDB does not have it yet,
what JetStream does: the job's newest event in EVENTS.

Every event of a job is stored on its own subject, `jobs.events.<job_id>`, so the newest
one is a single last-by-subject lookup of the stream (no consumer, no scan). The recorder
writes a job some time after its events (it batches them, and may be down): a job just
triggered or running answers at once, marked `source: "events"`, with what that event
says (the request it carries, its status, attempt, runner and times). MongoDB's document,
once there, wins: it holds every attempt and what the items added.
"""

import re
from typing import Any

from nats.js import JetStreamContext

from natscron_api.errors import ApiError
from natscron_api.queries import HIDDEN_FIELDS, Queries
from natscron_api.views import ExecutionView
from natscron_shared.contract.job_fields import job_fields
from natscron_shared.contract.messages import JobEvent
from natscron_shared.nats.job_events import last_job_event

FROM_EVENTS = "events"
SUBJECT_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,255}")
"""A job id that can be a subject token: anything else has no events to look up."""


def view_of(event: JobEvent) -> ExecutionView:
    """What the newest event says about its job, as `jobs get` shows a job."""
    fields: dict[str, Any] = {
        **job_fields(event, event.at),
        "attempts": None if event.ended_attempt is None else [event.ended_attempt],
        "source": FROM_EVENTS,
    }
    for bookkeeping in HIDDEN_FIELDS:
        fields.pop(bookkeeping, None)
    return ExecutionView.model_validate(fields)


class JobLookup:
    def __init__(self, queries: Queries, js: JetStreamContext) -> None:
        self._queries = queries
        self._js = js

    async def get(self, job_id: str) -> ExecutionView:
        """MongoDB's document; else the newest event; else `unknown_job`."""
        try:
            return await self._queries.execution(job_id)
        except ApiError as missing:
            if missing.code != "unknown_job" or not SUBJECT_TOKEN.fullmatch(job_id):
                raise
            event = await last_job_event(self._js, job_id)
            if event is None:
                raise
            return view_of(event)
