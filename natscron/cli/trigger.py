"""`natscron trigger ID` and `natscron retry JOB_ID`, through any ticker (`jobs.trigger`)."""

import json

from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError

from natscron.cli.connect import nats_client
from natscron.stack import resolve_nats_url
from natscron_shared import names
from natscron_shared.enums import Priority
from natscron_shared.errors import NatscronError
from natscron_shared.settings import Settings

REQUEST_TIMEOUT_SECONDS = 10.0


class TriggerFailedError(NatscronError):
    code = "trigger_failed"


async def trigger(scheduled_job_id: str, priority: Priority, settings: Settings) -> str:
    return await _request(
        {"scheduled_job_id": scheduled_job_id, "priority": priority.value}, settings
    )


async def retry(job_id: str, settings: Settings) -> str:
    """Run a failed or cancelled job again, as a new job linked to it."""
    return await _request({"retry_of": job_id}, settings)


async def _request(body: dict[str, str], settings: Settings) -> str:
    async with nats_client(resolve_nats_url(settings)) as client:
        try:
            reply = await client.request(
                names.JOBS_TRIGGER, json.dumps(body).encode(), timeout=REQUEST_TIMEOUT_SECONDS
            )
        except (NoRespondersError, NatsTimeoutError) as exc:
            raise TriggerFailedError("no ticker answered on jobs.trigger; is one running?") from exc
    answer = json.loads(reply.data)
    if "error" in answer:
        raise TriggerFailedError(f"{answer['error']['code']}: {answer['error']['message']}")
    return f"{answer['job_id']} {answer['status']}: {answer['message']}"
