"""`jobs.trigger`: run a scheduled job now, or an ad-hoc job, answered by any ticker.

An endpoint of the ticker's micro service (`TriggerRequest` -> `TriggerReply`,
`natscron_shared.nats.request_reply`). Replies like seed 001's `POST /scrape/trigger`; a
bad request gets an error reply with a stable code. A request without a reply subject is
a fire-and-forget trigger.

An ad-hoc run is checked against the scraper catalogue (KV `scrapers`, what the live
runners advertise) before it is queued, in the pool it names or the one its scraper is
offered in: an unknown scraper (or one its pool does not offer) or params its schema
refuses get `unknown_scraper` or `invalid_params`; with no runner advertising, `no_runners`
unless the request sets `unchecked` (then it runs in the pool it names, or the default).
A scheduled job's run goes to the spec's pool, a retry to its job's. A paused or inactive
scheduled job is refused (`not_active`) unless the request sets `force`: it was stopped for
a reason, so a run needs saying so; forced, it runs once and stays paused.

`retry_of` runs a failed or cancelled job again as a new job (`trigger: retry`, linked by
`retry_of`), with the request its last event in EVENTS carries: `unknown_job` when EVENTS
no longer has it, `not_retryable` when it did not end failed or cancelled.
"""

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from nats.js.errors import BucketNotFoundError, KeyDeletedError, KeyNotFoundError
from nats.js.kv import KeyValue
from pydantic import ValidationError

from natscron_shared.contract import names
from natscron_shared.contract.backfill import NotActiveError
from natscron_shared.contract.catalogue import (
    Catalogue,
    NoRunnersError,
    check_job,
    no_runners_message,
)
from natscron_shared.contract.enums import JobStatus, Priority, ScheduledJobStatus, Trigger
from natscron_shared.contract.errors import (
    BadRequestError,
    NotRetryableError,
    UnavailableError,
    UnknownJobError,
    UnknownScheduledJobError,
)
from natscron_shared.contract.job_ids import adhoc_job_id, retry_job_id, triggered_job_id
from natscron_shared.contract.messages import (
    JobEvent,
    RunRequest,
    TriggerReply,
    TriggerRequest,
    run_request_for,
)
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.contract.pools import DEFAULT_POOL
from natscron_shared.nats.connection import TRANSIENT_NATS_ERRORS
from natscron_shared.nats.jetstream_check import NotProvisionedError
from natscron_shared.nats.request_reply import Endpoint
from natscron_shared.runtime.clock import Clock
from natscron_ticker.metrics import TickerMetrics
from natscron_ticker.publishing import JobPublisher

log = logging.getLogger(__name__)

MAX_TRIGGER_BYTES = 64 * 1024
"""A trigger names a job and a few parameters; anything bigger is a mistake or abuse."""
RETRYABLE = (JobStatus.FAILED, JobStatus.CANCELLED)


class TriggerHandler:
    def __init__(
        self,
        specs: KeyValue,
        publisher: JobPublisher,
        clock: Clock,
        metrics: TickerMetrics,
        catalogue: Callable[[], Awaitable[Catalogue]],
        last_event: Callable[[str], Awaitable[JobEvent | None]],
        is_parent: Callable[[str], bool] = lambda _: False,
    ) -> None:
        self._specs = specs
        self._publisher = publisher
        self._clock = clock
        self._metrics = metrics
        self._catalogue = catalogue
        """Reads the scraper catalogue (KV `scrapers`). Read per ad-hoc trigger (they are
        rare), so it is never stale."""
        self._last_event = last_event
        """The newest event of a job in EVENTS, for retries."""
        self._is_parent = is_parent
        """Whether another schedule runs after this one (`ScheduleBook.is_parent`): its
        runs, triggered or retried too, announce their ends for the chain."""

    def endpoint(self) -> Endpoint[TriggerRequest]:
        """`jobs.trigger`, answered by one ticker of all (the service's queue group)."""
        return Endpoint(
            names.JOBS_TRIGGER,
            TriggerRequest,
            self.handle,
            "Run a scheduled job now, or an ad-hoc job; any ticker answers",
            max_bytes=MAX_TRIGGER_BYTES,
        )

    async def handle(self, request: TriggerRequest) -> TriggerReply:
        now = self._clock.now()
        target = request.target
        if request.retry_of is not None:
            run = await self._retry(request.retry_of, request.priority, now)
            message = f"Queued a retry of job {request.retry_of}"
        elif target is None:
            assert request.scraper is not None
            pool = request.pool or DEFAULT_POOL
            if not request.unchecked:
                pool = await self._check(request.scraper, request.params, request.pool)
            run = RunRequest(
                job_id=adhoc_job_id(now),
                trigger=Trigger.ADHOC,
                priority=request.priority,
                created_at=now,
                scraper=request.scraper,
                params=request.params,
                pool=pool,
                max_retries=request.max_retries,
                timeout_seconds=request.timeout_seconds,
            )
            message = (
                f"Queued ad-hoc {request.scraper} job to run {request.priority.value}"
                f" in pool {pool}"
            )
        else:
            spec = await self._spec(target)
            _check_active(spec, request.force)
            run = run_request_for(
                spec,
                job_id=triggered_job_id(spec.scheduled_job_id, now),
                trigger=Trigger.TRIGGERED,
                priority=request.priority,
                created_at=now,
                scheduled_for=None,
                chain_parent=self._is_parent(spec.scheduled_job_id),
            )
            when = "immediately" if request.priority is Priority.IMMEDIATE else "soon"
            message = f"Triggered scheduled job '{spec.name}' to run {when}"
            if spec.status is not ScheduledJobStatus.ACTIVE:
                message += f"; it stays {spec.status.value}"
        try:
            await self._publisher.publish_job(run)
        except TRANSIENT_NATS_ERRORS as exc:
            self._metrics.nats_errors.labels("publish").inc()
            raise UnavailableError(f"could not queue the job: {type(exc).__name__}") from exc
        log.info("queued %s", run.job_id)
        return TriggerReply(job_id=run.job_id, message=message, created_at=now)

    async def _retry(self, job_id: str, priority: Priority, now: datetime) -> RunRequest:
        """A new job running what `job_id` ran, linked to it: taken from the job's last
        event in EVENTS (every event carries the whole request)."""
        try:
            last = await self._last_event(job_id)
        except TRANSIENT_NATS_ERRORS as exc:
            self._metrics.nats_errors.labels("events_read").inc()
            raise UnavailableError(f"could not read the job's events: {exc!r}") from exc
        if last is None:
            raise UnknownJobError(f"no job {job_id!r} in the event history")
        if last.status not in RETRYABLE:
            raise NotRetryableError(
                f"job {job_id!r} is {last.status.value}; only failed or cancelled jobs are retried"
            )
        return last.job.model_copy(
            update={
                "job_id": retry_job_id(now),
                "trigger": Trigger.RETRY,
                "retry_of": job_id,
                "priority": priority,
                "created_at": now,
                "scheduled_for": None,
                "attempt": 1,
                "not_before": None,
                "records_last_run": False,
                "chain_parent": last.job.scheduled_job_id is not None
                and self._is_parent(last.job.scheduled_job_id),
            }
        )

    async def _check(self, scraper: str, params: dict[str, Any], pool: str | None) -> str:
        """Refuse an ad-hoc run that no live runner could run, as `natscron apply` does;
        the pool it runs in otherwise."""
        try:
            catalogue = await self._catalogue()
        except BucketNotFoundError as exc:
            raise NotProvisionedError(
                f"KV {names.KV_SCRAPERS} does not exist; run `natscron provision`"
            ) from exc
        except TRANSIENT_NATS_ERRORS as exc:
            self._metrics.nats_errors.labels("catalogue").inc()
            raise UnavailableError(f"could not read the scraper catalogue: {exc!r}") from exc
        if not catalogue:
            raise NoRunnersError(no_runners_message('set "unchecked": true'))
        return check_job(catalogue, scraper, params, pool)

    async def _spec(self, scheduled_job_id: str) -> ScheduledJob:
        """Read from KV, not the book, so a job applied a moment ago is already known."""
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


def _check_active(spec: ScheduledJob, force: bool) -> None:
    """A paused (or inactive) schedule was stopped for a reason: running it takes `force`."""
    if spec.status is ScheduledJobStatus.ACTIVE or force:
        return
    reason = f" ({spec.paused_reason})" if spec.paused_reason else ""
    raise NotActiveError(
        f"scheduled job {spec.scheduled_job_id!r} is {spec.status.value}{reason}; trigger it"
        " with force to run it once all the same (`natscron trigger --force`), or resume it"
    )
