"""Running one job message: events, the scrape under its timeout, then ack or nak.

The `running` event and the item batches are pipelined with the scrape; the event
saying how the attempt ended is published once they are all stored, and the message
is settled only after that event is stored too, so a crash anywhere before that means
a redelivery, never a lost job.
"""

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from nats.aio.msg import Msg
from pydantic import ValidationError

from natscron_runner.events import AttemptSends, ItemBatcher, PublishFailedError, publish_event
from natscron_runner.metrics import RunnerMetrics
from natscron_runner.scrapers.base import ScrapeContext
from natscron_runner.scrapers.errors import PermanentScrapeError
from natscron_runner.scrapers.registry import ScraperRegistry
from natscron_shared.clock import Clock
from natscron_shared.enums import JobStatus
from natscron_shared.errors import UnknownScraperError
from natscron_shared.jetstream_layout import RUNNER_ACK_WAIT_SECONDS
from natscron_shared.messages import JobEvent, RunRequest, bad_message_reason
from natscron_shared.models import retry_delay_seconds
from natscron_shared.nats_conn import JetStreamPublisher, settle_quietly

log = logging.getLogger(__name__)

PROGRESS_INTERVAL = timedelta(seconds=RUNNER_ACK_WAIT_SECONDS / 4)
PUBLISH_RETRY_DELAY_SECONDS = 2.0
MAX_ERROR_MESSAGE_CHARS = 2000
PERMANENT_ERRORS = (PermanentScrapeError, UnknownScraperError)
JOB_ID_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,255}")
"""Job ids become subject tokens (`jobs.events.<job_id>`): no dots, spaces or wildcards."""


@dataclass(frozen=True)
class Attempt:
    """One delivery of a run request, and how to describe it in events."""

    request: RunRequest
    number: int
    runner_id: str
    started_at: datetime

    def event(self, status: JobStatus, at: datetime, **fields: Any) -> JobEvent:
        return JobEvent(
            job=self.request,
            status=status,
            attempt=self.number,
            at=at,
            runner_id=self.runner_id,
            started_at=self.started_at,
            **fields,
        )


@dataclass(frozen=True)
class Outcome:
    """The event that ends an attempt, and how to settle the message once it is stored."""

    event: JobEvent
    settle: Callable[[], Awaitable[None]]
    metric_status: str


def describe(error: BaseException, request: RunRequest) -> str:
    if isinstance(error, TimeoutError) and not str(error):
        return f"the job did not finish within its timeout of {request.timeout_seconds}s"
    return (str(error) or type(error).__name__)[:MAX_ERROR_MESSAGE_CHARS]


@contextlib.asynccontextmanager
async def progress_acks(msg: Msg, clock: Clock) -> AsyncIterator[None]:
    """Tell JetStream the job is still being worked on, so ack_wait does not expire."""

    async def beat() -> None:
        while True:
            await clock.sleep_until(clock.now() + PROGRESS_INTERVAL)
            try:
                await msg.in_progress()
            except Exception:
                log.warning("progress ack failed", exc_info=True)

    task = asyncio.create_task(beat(), name="runner-progress-acks")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class JobExecutor:
    def __init__(
        self,
        publisher: JetStreamPublisher,
        scrapers: ScraperRegistry,
        metrics: RunnerMetrics,
        runner_id: str,
        clock: Clock,
    ) -> None:
        self._publisher = publisher
        self._scrapers = scrapers
        self._metrics = metrics
        self._runner_id = runner_id
        self._clock = clock

    async def handle(self, msg: Msg) -> None:
        """Never raises, except CancelledError after handing the message back."""
        request = await self._parse(msg)
        if request is None:
            return
        attempt = Attempt(
            request=request,
            number=max(1, msg.metadata.num_delivered),
            runner_id=self._runner_id,
            started_at=self._clock.now(),
        )
        self._metrics.running.inc()
        sends = AttemptSends(self._publisher)
        try:
            await sends.send_event(attempt.event(JobStatus.RUNNING, attempt.started_at))
            log.info("job %s attempt %d running", request.job_id, attempt.number)
            outcome = await self._run(attempt, msg, sends)
            await sends.confirmed()
            await publish_event(self._publisher, outcome.event)
            await settle_quietly(outcome.settle(), "settle", f"job {request.job_id}")
            self._metrics.jobs.labels(outcome.metric_status).inc()
        except PublishFailedError as exc:
            self._metrics.nats_errors.labels("publish").inc()
            log.warning("job %s: %s; handing it back", request.job_id, exc)
            await settle_quietly(
                msg.nak(delay=PUBLISH_RETRY_DELAY_SECONDS), "nak", f"job {request.job_id}"
            )
        except asyncio.CancelledError:
            log.info(
                "job %s attempt %d interrupted; handing it back", request.job_id, attempt.number
            )
            await settle_quietly(msg.nak(), "hand back", f"job {request.job_id}")
            self._metrics.jobs.labels("handed_back").inc()
            raise
        finally:
            self._metrics.running.dec()

    async def _parse(self, msg: Msg) -> RunRequest | None:
        try:
            request = RunRequest.model_validate_json(msg.data)
        except ValidationError as exc:
            details = exc.errors(include_url=False, include_input=False)[:3]
            await self._reject(msg, bad_message_reason(exc), str(details))
            return None
        if not JOB_ID_TOKEN.fullmatch(request.job_id):
            detail = f"job_id {request.job_id[:100]!r} is not a subject token"
            await self._reject(msg, "invalid_job_id", detail)
            return None
        return request

    async def _reject(self, msg: Msg, reason: str, detail: str) -> None:
        self._metrics.bad_messages.labels(reason).inc()
        log.warning("terminating a bad run request on %s (%s): %s", msg.subject, reason, detail)
        await settle_quietly(msg.term(), "terminate", f"a bad run request on {msg.subject}")

    async def _run(self, attempt: Attempt, msg: Msg, sends: AttemptSends) -> Outcome:
        request = attempt.request
        context = ScrapeContext(
            job_id=request.job_id,
            scheduled_job_id=request.scheduled_job_id,
            attempt=attempt.number,
            skip=self._count_skip,
        )
        batcher = ItemBatcher(sends, request, self._clock, self._count_skip)
        try:
            async with progress_acks(msg, self._clock), asyncio.timeout(request.timeout_seconds):
                items = self._scrapers.get(request.scraper).scrape(request.params, context)
                try:
                    async for item in items:
                        await batcher.add(item)
                finally:
                    await _close(items)
                await batcher.flush()
                await sends.confirmed()
        except PublishFailedError:
            raise
        except Exception as exc:
            return self._failure(attempt, msg, exc, batcher)
        finally:
            self._metrics.items_scraped.inc(batcher.items)
        return self._finished(
            attempt, JobStatus.COMPLETED, msg.ack, "completed", batcher, error=None
        )

    def _failure(
        self, attempt: Attempt, msg: Msg, error: Exception, batcher: ItemBatcher
    ) -> Outcome:
        request = attempt.request
        retryable = not isinstance(error, PERMANENT_ERRORS)
        log.warning(
            "job %s attempt %d failed (%s%s): %s",
            request.job_id,
            attempt.number,
            type(error).__name__,
            "" if retryable else ", permanent",
            error,
        )
        if retryable and attempt.number <= request.max_retries:
            delay = retry_delay_seconds(request.retry_backoff_seconds, attempt.number)
            event = JobEvent(
                job=request,
                status=JobStatus.PENDING,
                attempt=attempt.number + 1,
                at=self._clock.now(),
                error_message=describe(error, request),
                error_type=type(error).__name__,
            )
            return Outcome(event, lambda: msg.nak(delay=delay), "retried")
        return self._finished(attempt, JobStatus.FAILED, msg.ack, "failed", batcher, error=error)

    def _finished(
        self,
        attempt: Attempt,
        status: JobStatus,
        settle: Callable[[], Awaitable[None]],
        metric_status: str,
        batcher: ItemBatcher,
        error: Exception | None,
    ) -> Outcome:
        completed_at = self._clock.now()
        duration = max(0.0, (completed_at - attempt.started_at).total_seconds())
        self._metrics.duration.observe(duration)
        event = attempt.event(
            status,
            completed_at,
            completed_at=completed_at,
            duration_ms=round(duration * 1000),
            properties_scraped=batcher.items,
            item_batches=batcher.batches,
            error_message=None if error is None else describe(error, attempt.request),
            error_type=None if error is None else type(error).__name__,
        )
        return Outcome(event, settle, metric_status)

    def _count_skip(self, reason: str) -> None:
        self._metrics.items_skipped.labels(reason).inc()


async def _close(items: AsyncIterator[Any]) -> None:
    """Run an async generator's cleanup (e.g. closing its HTTP client) right away."""
    aclose = getattr(items, "aclose", None)
    if aclose is not None:
        await aclose()
