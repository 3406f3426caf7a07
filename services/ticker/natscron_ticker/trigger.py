"""`jobs.trigger`: run a scheduled job now, or an ad-hoc job, answered by any ticker.

Replies like seed 001's `POST /scrape/trigger`; every bad request gets an error reply
with a stable code and is counted.
"""

import logging

import nats.errors
from nats.js.errors import KeyDeletedError, KeyNotFoundError
from nats.js.kv import KeyValue
from pydantic import ValidationError

from natscron_shared.clock import Clock
from natscron_shared.enums import Priority, Trigger
from natscron_shared.errors import (
    BadRequestError,
    MessageTooLargeError,
    NatscronError,
    UnknownScheduledJobError,
)
from natscron_shared.job_ids import adhoc_job_id, triggered_job_id
from natscron_shared.messages import (
    ErrorReply,
    RunRequest,
    TriggerReply,
    TriggerRequest,
    run_request_for,
)
from natscron_shared.models import ScheduledJob
from natscron_shared.nats_conn import to_json
from natscron_ticker.metrics import TickerMetrics
from natscron_ticker.publishing import JobPublisher

log = logging.getLogger(__name__)

MAX_TRIGGER_BYTES = 64 * 1024
"""A trigger names a job and a few parameters; anything bigger is a mistake or abuse."""


class UnavailableError(NatscronError):
    code = "unavailable"


class TriggerHandler:
    def __init__(
        self, specs: KeyValue, publisher: JobPublisher, clock: Clock, metrics: TickerMetrics
    ) -> None:
        self._specs = specs
        self._publisher = publisher
        self._clock = clock
        self._metrics = metrics

    async def handle(self, body: bytes) -> bytes:
        """The JSON reply to one request; never raises."""
        try:
            reply = await self._accept(body)
        except NatscronError as exc:
            self._metrics.triggers.labels(exc.code).inc()
            log.info("rejected a trigger request: %s", exc)
            return to_json(ErrorReply.of(exc.code, exc.detail))
        self._metrics.triggers.labels("accepted").inc()
        return to_json(reply)

    async def _accept(self, body: bytes) -> TriggerReply:
        request = self._parse(body)
        now = self._clock.now()
        target = request.target
        if target is None:
            assert request.scraper is not None
            run = RunRequest(
                job_id=adhoc_job_id(now),
                trigger=Trigger.ADHOC,
                priority=request.priority,
                created_at=now,
                scraper=request.scraper,
                params=request.params,
                max_retries=request.max_retries,
                timeout_seconds=request.timeout_seconds,
            )
            message = f"Queued ad-hoc {request.scraper} job to run {request.priority.value}"
        else:
            spec = await self._spec(target)
            run = run_request_for(
                spec,
                job_id=triggered_job_id(spec.scheduled_job_id, now),
                trigger=Trigger.TRIGGERED,
                priority=request.priority,
                created_at=now,
                scheduled_for=None,
            )
            when = "immediately" if request.priority is Priority.IMMEDIATE else "soon"
            message = f"Triggered scheduled job '{spec.name}' to run {when}"
        try:
            await self._publisher.publish_job(run)
        except (nats.errors.Error, TimeoutError) as exc:
            self._metrics.nats_errors.labels("publish").inc()
            raise UnavailableError(f"could not queue the job: {type(exc).__name__}") from exc
        log.info("queued %s", run.job_id)
        return TriggerReply(job_id=run.job_id, message=message, created_at=now)

    @staticmethod
    def _parse(body: bytes) -> TriggerRequest:
        if len(body) > MAX_TRIGGER_BYTES:
            raise MessageTooLargeError(f"request of {len(body)} bytes is over {MAX_TRIGGER_BYTES}")
        try:
            return TriggerRequest.model_validate_json(body)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, error['loc'])) or 'body'}: {error['msg']}"
                for error in exc.errors(include_url=False, include_input=False)[:3]
            )
            raise BadRequestError(f"invalid trigger request: {problems}") from exc

    async def _spec(self, scheduled_job_id: str) -> ScheduledJob:
        """Read from KV, not the book, so a job applied a moment ago is already known.
        Paused and inactive jobs can be triggered: a manual run is the user's call."""
        try:
            entry = await self._specs.get(scheduled_job_id)
        except (KeyNotFoundError, KeyDeletedError) as exc:
            raise UnknownScheduledJobError(scheduled_job_id) from exc
        except (nats.errors.Error, TimeoutError) as exc:
            self._metrics.nats_errors.labels("kv_get").inc()
            raise UnavailableError(f"could not read the scheduled job: {exc}") from exc
        try:
            spec = ScheduledJob.model_validate_json(entry.value or b"")
        except ValidationError as exc:
            raise BadRequestError(f"scheduled job {scheduled_job_id!r} is not valid in KV") from exc
        return spec
