"""Runs started, retried, backfilled and cancelled: requests to the services that do them,
over NATS (`jobs.trigger` and `jobs.backfill`: any ticker; `jobs.cancel`: any runner), by
`natscron_shared.nats.request_reply.request`: an error reply keeps its code."""

from datetime import datetime

from nats.aio.client import Client
from pydantic import ValidationError

from natscron_api.errors import ApiError
from natscron_shared.contract import names
from natscron_shared.contract.backfill import BackfillReply, BackfillRequest
from natscron_shared.contract.cancel import CancelReply, CancelRequest
from natscron_shared.contract.enums import Priority
from natscron_shared.contract.errors import invalid_request
from natscron_shared.contract.messages import TriggerReply, TriggerRequest
from natscron_shared.nats.request_reply import REQUEST_TIMEOUT_SECONDS, request


class Commands:
    def __init__(self, client: Client, request_timeout: float = REQUEST_TIMEOUT_SECONDS) -> None:
        self._client = client
        self._timeout = request_timeout

    async def trigger(self, trigger: TriggerRequest) -> TriggerReply:
        """Run a scheduled job now, or an ad-hoc run: any ticker answers `jobs.trigger`."""
        return await request(
            self._client,
            names.JOBS_TRIGGER,
            trigger,
            TriggerReply,
            who="ticker",
            within=self._timeout,
        )

    async def backfill(
        self, scheduled_job_id: str, start: datetime, end: datetime, dry_run: bool = False
    ) -> BackfillReply:
        """Publish the past slots in `[start, end]` that never ran; any ticker answers
        `jobs.backfill` (`natscron_shared.contract.backfill`)."""
        try:
            backfill = BackfillRequest(
                scheduled_job_id=scheduled_job_id, start=start, end=end, dry_run=dry_run
            )
        except ValidationError as exc:
            raise invalid_request(exc) from None
        return await request(
            self._client,
            names.JOBS_BACKFILL,
            backfill,
            BackfillReply,
            who="ticker",
            within=self._timeout,
        )

    async def retry(self, job_id: str, priority: Priority = Priority.IMMEDIATE) -> TriggerReply:
        """Run a failed or cancelled job again, as a new job linked to it."""
        return await self.trigger(TriggerRequest(retry_of=job_id, priority=priority))

    async def cancel(self, job_id: str, reason: str | None, by: str) -> CancelReply:
        """Any runner answers `jobs.cancel`; its marker stands whatever it found. A job no
        runner knows of is `unknown_job` (the marker still refuses it if it turns up)."""
        cancel = CancelRequest(job_id=job_id, reason=reason, by=by)
        reply = await request(
            self._client, names.JOBS_CANCEL, cancel, CancelReply, who="runner", within=self._timeout
        )
        if reply.found == "unknown":
            raise ApiError(
                "unknown_job",
                f"no job with id {job_id!r} was seen; the cancel stays on record for 14 days,"
                " so it is refused if it turns up",
            )
        return reply
