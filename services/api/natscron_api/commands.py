"""Runs started, retried, backfilled and cancelled: requests to the services that do them,
over NATS (`jobs.trigger` and `jobs.backfill`: any ticker; `jobs.cancel`: any runner). An
error reply keeps its code (`errors.py`)."""

import json
from datetime import datetime
from typing import Any

import nats.errors
from nats.aio.client import Client
from pydantic import ValidationError

from natscron_api.errors import ApiError, problems_sentence, unavailable
from natscron_shared.contract import names
from natscron_shared.contract.backfill import BackfillReply, BackfillRequest
from natscron_shared.contract.cancel import CancelReply, CancelRequest
from natscron_shared.contract.enums import Priority
from natscron_shared.contract.messages import TriggerReply, TriggerRequest
from natscron_shared.nats.connection import TRANSIENT_NATS_ERRORS, to_json

REQUEST_TIMEOUT_SECONDS = 10.0


class Commands:
    def __init__(self, client: Client, request_timeout: float = REQUEST_TIMEOUT_SECONDS) -> None:
        self._client = client
        self._timeout = request_timeout

    async def trigger(self, request: TriggerRequest) -> TriggerReply:
        """Run a scheduled job now, or an ad-hoc run: any ticker answers `jobs.trigger`."""
        answer = await self._request(
            names.JOBS_TRIGGER, request.model_dump_json(exclude_none=True).encode(), "ticker"
        )
        return TriggerReply.model_validate(answer)

    async def backfill(
        self, scheduled_job_id: str, start: datetime, end: datetime, dry_run: bool = False
    ) -> BackfillReply:
        """Publish the past slots in `[start, end]` that never ran; any ticker answers
        `jobs.backfill` (`natscron_shared.contract.backfill`)."""
        try:
            request = BackfillRequest(
                scheduled_job_id=scheduled_job_id, start=start, end=end, dry_run=dry_run
            )
        except ValidationError as exc:
            raise ApiError("invalid_request", problems_sentence(exc.errors())) from None
        answer = await self._request(names.JOBS_BACKFILL, to_json(request), "ticker")
        return BackfillReply.model_validate(answer)

    async def retry(self, job_id: str, priority: Priority = Priority.IMMEDIATE) -> TriggerReply:
        """Run a failed or cancelled job again, as a new job linked to it."""
        return await self.trigger(TriggerRequest(retry_of=job_id, priority=priority))

    async def cancel(self, job_id: str, reason: str | None, by: str) -> CancelReply:
        """Any runner answers `jobs.cancel`; its marker stands whatever it found. A job no
        runner knows of is `unknown_job` (the marker still refuses it if it turns up)."""
        request = CancelRequest(job_id=job_id, reason=reason, by=by)
        answer = await self._request(names.JOBS_CANCEL, to_json(request), "runner")
        reply = CancelReply.model_validate(answer)
        if reply.found == "unknown":
            raise ApiError(
                "unknown_job",
                f"no job with id {job_id!r} was seen; the cancel stays on record for 14 days,"
                " so it is refused if it turns up",
            )
        return reply

    async def _request(self, subject: str, payload: bytes, who: str) -> Any:
        try:
            reply = await self._client.request(subject, payload, timeout=self._timeout)
        except nats.errors.NoRespondersError:
            raise unavailable(f"no {who} answered on {subject}; is one running?") from None
        except (TimeoutError, nats.errors.TimeoutError):
            raise unavailable(f"no {who} answered on {subject} within {self._timeout:g}s") from None
        except TRANSIENT_NATS_ERRORS as exc:
            raise unavailable(f"NATS is unavailable ({type(exc).__name__})") from None
        try:
            answer = json.loads(reply.data)
        except ValueError:
            raise ApiError("remote_error", f"the {who}'s reply on {subject} is not JSON") from None
        error = answer.get("error") if isinstance(answer, dict) else None
        if isinstance(error, dict):
            code, message = str(error.get("code", "remote_error")), str(error.get("message", ""))
            if code == "internal_error":
                raise ApiError("remote_error", f"the {who} failed: {message}")
            raise ApiError(code, message)
        return answer
