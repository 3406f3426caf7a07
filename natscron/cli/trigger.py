"""`natscron trigger ID`: run a scheduled job now, through any ticker."""

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
    body = json.dumps({"scheduled_job_id": scheduled_job_id, "priority": priority.value})
    async with nats_client(resolve_nats_url(settings)) as client:
        try:
            reply = await client.request(
                names.JOBS_TRIGGER, body.encode(), timeout=REQUEST_TIMEOUT_SECONDS
            )
        except (NoRespondersError, NatsTimeoutError) as exc:
            raise TriggerFailedError("no ticker answered on jobs.trigger; is one running?") from exc
    answer = json.loads(reply.data)
    if "error" in answer:
        raise TriggerFailedError(f"{answer['error']['code']}: {answer['error']['message']}")
    return f"{answer['job_id']} {answer['status']}: {answer['message']}"
