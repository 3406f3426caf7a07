"""`jobs.trigger`: run a scheduled job now, or an ad-hoc job, answered by any ticker.

A typed FastStream request/reply handler (`TriggerRequest` -> `TriggerReply`). Replies
like seed 001's `POST /scrape/trigger`; every bad request gets an `ErrorReply` with a
stable code, from `error_reply`, and is counted. A request without a reply subject is
a fire-and-forget trigger.
"""

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from faststream.nats import NatsBroker, NatsMessage
from nats.js.errors import KeyDeletedError, KeyNotFoundError
from nats.js.kv import KeyValue
from pydantic import ValidationError

from natscron_shared import names
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
from natscron_shared.nats_conn import TRANSIENT_NATS_ERRORS
from natscron_ticker.metrics import TickerMetrics
from natscron_ticker.publishing import JobPublisher

log = logging.getLogger(__name__)

MAX_TRIGGER_BYTES = 64 * 1024
"""A trigger names a job and a few parameters; anything bigger is a mistake or abuse."""
MAX_LISTED_PROBLEMS = 3


class UnavailableError(NatscronError):
    code = "unavailable"


def invalid_request(error: ValidationError) -> BadRequestError:
    """A sentence naming the first problems' fields, without pydantic's decorations."""
    problems = "; ".join(
        f"{'.'.join(map(str, error_detail['loc'][1:])) or 'body'}: {error_detail['msg']}"
        for error_detail in error.errors(include_url=False, include_input=False)[
            :MAX_LISTED_PROBLEMS
        ]
    )
    return BadRequestError(f"invalid trigger request: {problems}")


async def _bounded_decode(
    message: NatsMessage, decode: Callable[[NatsMessage], Awaitable[Any]]
) -> Any:
    if len(message.body) > MAX_TRIGGER_BYTES:
        raise MessageTooLargeError(
            f"request of {len(message.body)} bytes is over {MAX_TRIGGER_BYTES}"
        )
    return await decode(message)


class TriggerHandler:
    def __init__(
        self, specs: KeyValue, publisher: JobPublisher, clock: Clock, metrics: TickerMetrics
    ) -> None:
        self._specs = specs
        self._publisher = publisher
        self._clock = clock
        self._metrics = metrics

    def subscribe(self, broker: NatsBroker) -> None:
        """Serve `jobs.trigger` on `broker`, in the queue group of all tickers."""
        broker.subscriber(
            names.JOBS_TRIGGER,
            queue=names.TICKER_QUEUE,
            decoder=_bounded_decode,
            title=names.JOBS_TRIGGER,
            description="Run a scheduled job now, or an ad-hoc job; any ticker answers",
        )(self.handle)

    def error_reply(self, error: Exception) -> ErrorReply:
        """The reply to a request that failed; the broker's exception middleware calls it."""
        if isinstance(error, ValidationError):
            error = invalid_request(error)
        if not isinstance(error, NatscronError):
            log.exception("a trigger request failed unexpectedly", exc_info=error)
            error = NatscronError(f"internal error: {type(error).__name__}")
        self._metrics.triggers.labels(error.code).inc()
        log.info("rejected a trigger request: %s", error)
        return ErrorReply.of(error.code, error.detail)

    async def handle(self, request: TriggerRequest) -> TriggerReply:
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
        except TRANSIENT_NATS_ERRORS as exc:
            self._metrics.nats_errors.labels("publish").inc()
            raise UnavailableError(f"could not queue the job: {type(exc).__name__}") from exc
        log.info("queued %s", run.job_id)
        self._metrics.triggers.labels("accepted").inc()
        return TriggerReply(job_id=run.job_id, message=message, created_at=now)

    async def _spec(self, scheduled_job_id: str) -> ScheduledJob:
        """Read from KV, not the book, so a job applied a moment ago is already known.
        Paused and inactive jobs can be triggered: a manual run is the user's call."""
        try:
            entry = await self._specs.get(scheduled_job_id)
        except (KeyNotFoundError, KeyDeletedError) as exc:
            raise UnknownScheduledJobError(scheduled_job_id) from exc
        except TRANSIENT_NATS_ERRORS as exc:
            self._metrics.nats_errors.labels("kv_get").inc()
            raise UnavailableError(f"could not read the scheduled job: {exc}") from exc
        try:
            spec = ScheduledJob.model_validate_json(entry.value or b"")
        except ValidationError as exc:
            raise BadRequestError(f"scheduled job {scheduled_job_id!r} is not valid in KV") from exc
        return spec
