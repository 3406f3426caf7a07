"""Runs started, retried, backfilled and cancelled (one or many): requests to the services
that do them, over NATS (`jobs.trigger` and `jobs.backfill`: any ticker; `jobs.cancel`: any
runner), by `natscron_shared.nats.request_reply.request`: an error reply keeps its code."""

import asyncio
from collections.abc import Sequence
from datetime import datetime

from nats.aio.client import Client
from pydantic import ValidationError

from natscron_api.errors import ApiError
from natscron_api.views import JobCancelResult
from natscron_shared.contract import names
from natscron_shared.contract.backfill import BackfillReply, BackfillRequest
from natscron_shared.contract.cancel import CancelReply, CancelRequest
from natscron_shared.contract.enums import Priority
from natscron_shared.contract.errors import NatscronError, invalid_request
from natscron_shared.contract.messages import TriggerReply, TriggerRequest
from natscron_shared.nats.request_reply import REQUEST_TIMEOUT_SECONDS, request

BULK_CANCEL_CONCURRENCY = 16
"""`jobs.cancel` requests of one bulk cancel in flight at once: enough to keep the runners'
queue group busy, few enough to leave room for everyone else's requests."""


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
        reply = await self._cancel(job_id, reason, by)
        if reply.found == "unknown":
            raise ApiError(
                "unknown_job",
                f"no job with id {job_id!r} was seen; the cancel stays on record for 14 days,"
                " so it is refused if it turns up",
            )
        return reply

    async def cancel_many(
        self, job_ids: Sequence[str], reason: str | None, by: str
    ) -> list[JobCancelResult]:
        """A `jobs.cancel` request for each job, `BULK_CANCEL_CONCURRENCY` at a time, in
        order; one that does not get through is `failed` with its code, the others go on."""
        gate = asyncio.Semaphore(BULK_CANCEL_CONCURRENCY)

        async def one(job_id: str) -> JobCancelResult:
            async with gate:
                try:
                    reply = await self._cancel(job_id, reason, by)
                except NatscronError as exc:
                    return JobCancelResult(
                        job_id=job_id, outcome="failed", message=exc.detail, code=exc.code
                    )
            return JobCancelResult(job_id=job_id, outcome=reply.found, message=reply.message)

        return list(await asyncio.gather(*(one(job_id) for job_id in job_ids)))

    async def _cancel(self, job_id: str, reason: str | None, by: str) -> CancelReply:
        cancel = CancelRequest(job_id=job_id, reason=reason, by=by)
        return await request(
            self._client, names.JOBS_CANCEL, cancel, CancelReply, who="runner", within=self._timeout
        )
