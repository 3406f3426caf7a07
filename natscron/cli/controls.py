"""`natscron pause|resume|delete` (by ids or `--selector`) and `natscron cancel`."""

import json
from collections.abc import Sequence
from datetime import UTC, datetime

from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError

from natscron.cli.connect import nats_client
from natscron.stack import resolve_nats_url
from natscron_shared import names, schedule_controls
from natscron_shared.cancel import CancelReply, CancelRequest
from natscron_shared.errors import BadRequestError, NatscronError
from natscron_shared.jetstream_check import Needs, require_provisioned
from natscron_shared.schedule_controls import ControlResult
from natscron_shared.settings import Settings

REQUEST_TIMEOUT_SECONDS = 10.0
NEEDS = Needs(buckets=(names.KV_SCHEDULED_JOBS,))


class CancelFailedError(NatscronError):
    code = "cancel_failed"


async def control(
    action: str,
    ids: Sequence[str],
    selector: str | None,
    reason: str | None,
    settings: Settings,
) -> str:
    """Pause, resume or delete the given scheduled jobs, or those `selector` picks."""
    if bool(ids) == (selector is not None):
        raise BadRequestError(f"{action}: give scheduled job ids or --selector, not both")
    async with nats_client(resolve_nats_url(settings)) as client:
        js = client.jetstream()
        await require_provisioned(js, NEEDS, f"{action} command")
        bucket = await js.key_value(names.KV_SCHEDULED_JOBS)
        chosen = list(ids)
        if selector is not None:
            chosen = await schedule_controls.select(
                bucket, schedule_controls.parse_selector(selector)
            )
        if action == "pause":
            results = await schedule_controls.pause(bucket, chosen, reason, datetime.now(UTC))
        elif action == "resume":
            results = await schedule_controls.resume(bucket, chosen)
        else:
            results = await schedule_controls.delete(bucket, chosen)
    return _report(results) if results else "no scheduled job matched"


def _report(results: list[ControlResult]) -> str:
    return "\n".join(f"{r.scheduled_job_id}: {r.message}" for r in results)


async def cancel(job_id: str, reason: str | None, settings: Settings) -> str:
    request = CancelRequest(job_id=job_id, reason=reason, by="natscron cli")
    async with nats_client(resolve_nats_url(settings)) as client:
        try:
            reply = await client.request(
                names.JOBS_CANCEL,
                request.model_dump_json().encode(),
                timeout=REQUEST_TIMEOUT_SECONDS,
            )
        except (NoRespondersError, NatsTimeoutError) as exc:
            raise CancelFailedError("no runner answered on jobs.cancel; is one running?") from exc
    answer = json.loads(reply.data)
    if "error" in answer:
        raise CancelFailedError(f"{answer['error']['code']}: {answer['error']['message']}")
    cancelled = CancelReply.model_validate(answer)
    return f"{cancelled.job_id} {cancelled.found}: {cancelled.message}"
