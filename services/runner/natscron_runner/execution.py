"""Running one job message: claims, events, the scrape under its timeout, then ack or nak.

The `running` event and the item batches are pipelined with the scrape; the event
saying how the attempt ended is published once they are all stored, and the message
is settled only after that event is stored too, so a crash anywhere before that means
a redelivery, never a lost job.

**Attempts are attempts.** The attempt number travels in the run request, not in
JetStream's delivery count, so a message handed back (the runner stops, a surplus
fetch, a publish that failed, a runner that died) runs again as the same attempt. Only a
failure with retries left makes a new attempt: a new run request for `attempt + 1`
(`Nats-Msg-Id` `<job_id>:<attempt>`, `not_before` = now + backoff) is published in the
same pool and lane, after the `pending` event that announces it, and only then is the
original acked. Publishing first means a crash in between leaves both messages: the original is
redone, and if it fails again its retry message has the same msg id, which JetStream
drops within the 15-minute duplicate window (redelivery comes after the ack wait);
if it succeeds, the retry later runs once more for nothing. Acking first could lose the
job. A message fetched before its `not_before` is handed back unrun, without any event,
with a nak delayed until then.

**Cancels.** A job whose id has a cancel marker (`CancelBook`) ends `cancelled` without
running when it is taken; one that runs when its marker arrives has its stage task
cancelled (the wait for its claims, or the scrape), keeps the items scraped so far
(the batcher is flushed, and they are counted in the final event), ends `cancelled`
with `cancelled_by` and the reason in `error_message`, and its message is acked.

**Resumable scrapes.** A scraper that saves checkpoints (`checkpoints.py`) resumes, in a
later delivery or attempt, where an earlier one left off; the checkpoint is deleted once
the job ends (its final event is stored), and kept while it is retried or handed back.

**Run detail.** The event that ends an attempt that ran carries its record (times, error,
a bounded traceback) and what the scraper put in `ScrapeContext.metadata`
(`attempt_detail.py`): the recorder keeps every attempt of the job from them.

**Last runs.** The final event of a scheduled run of an interval `from: last_run` is
followed by its end in KV `last_runs` (`LastRunWriter`), before the message is settled.

**Chains.** The final event of a run of a schedule others run after is followed by its
end on stream CHAINS (`ParentFinishes`), before the message is settled; a failed publish
hands the message back like a failed final event.
"""

import asyncio
import logging
import re
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.kv import KeyValue
from pydantic import ValidationError

from natscron_runner.attempt_detail import bounded_traceback, checked_metadata
from natscron_runner.cancels import CancelBook
from natscron_runner.chain_finishes import ParentFinishes
from natscron_runner.checkpoints import RunCheckpoint
from natscron_runner.claiming import ClaimBook, JobClaims, Refusal
from natscron_runner.events import (
    AttemptSends,
    ItemBatcher,
    PublishFailedError,
    publish,
    publish_event,
)
from natscron_runner.last_runs import LastRunWriter
from natscron_runner.metrics import RunnerMetrics
from natscron_runner.progress import overrun_deadline, progress_acks
from natscron_runner.scrapers.base import ScrapeContext
from natscron_runner.scrapers.errors import PermanentScrapeError
from natscron_runner.scrapers.polite import Politeness
from natscron_runner.scrapers.registry import ScraperRegistry
from natscron_runner.screenshots import ScreenshotStore
from natscron_shared.contract import names
from natscron_shared.contract.attempts import AttemptRecord
from natscron_shared.contract.cancel import CancelMarker
from natscron_shared.contract.decisions import Decision, DecisionKind
from natscron_shared.contract.enums import JobStatus
from natscron_shared.contract.errors import UnknownScraperError
from natscron_shared.contract.messages import JobEvent, RunRequest, bad_message_reason
from natscron_shared.contract.models import retry_delay_seconds
from natscron_shared.nats.connection import JetStreamPublisher, settle_quietly
from natscron_shared.runtime.clock import Clock

log = logging.getLogger(__name__)

PUBLISH_RETRY_DELAY_SECONDS = 2.0
NOT_BEFORE_SLACK_SECONDS = 0.05
"""A message due this close to its `not_before` runs: another round trip would cost more."""
CLAIMED_AGAIN_DELAY_SECONDS = 1.0
MAX_ERROR_MESSAGE_CHARS = 2000
DEFAULT_CANCEL_REASON = "cancelled on request"
PERMANENT_ERRORS = (PermanentScrapeError, UnknownScraperError)
JOB_ID_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,255}")
"""Job ids become subject tokens (`jobs.events.<job_id>`): no dots, spaces or wildcards."""


@dataclass(frozen=True)
class Attempt:
    """One attempt of a run request, and how to describe it in events. `metadata` is the
    scraper's (`ScrapeContext.metadata`), as it fills it."""

    request: RunRequest
    number: int
    runner_id: str
    started_at: datetime
    metadata: dict[str, Any]

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

    def ended(
        self,
        status: JobStatus,
        completed_at: datetime,
        error: Exception | None,
        error_message: str | None,
    ) -> AttemptRecord:
        return AttemptRecord(
            attempt=self.number,
            status=status,
            runner_id=self.runner_id,
            started_at=self.started_at,
            completed_at=completed_at,
            duration_ms=duration_ms(self.started_at, completed_at),
            error_type=None if error is None else type(error).__name__,
            error_message=error_message,
            traceback=None if error is None else bounded_traceback(error),
        )


@dataclass(frozen=True)
class Outcome:
    """How a job message ends: the event to store (none for a hand-back), a retry's
    run request or a decision record to publish after it, then how to settle the message."""

    event: JobEvent | None
    settle: Callable[[], Awaitable[None]]
    metric_status: str | None
    retry: RunRequest | None = None
    decision: Decision | None = None
    """Why it did not run, for `explain` (an overlap-policy skip), published after it."""


@dataclass
class RunningJob:
    """A job this runner has taken, until its message is settled: what a cancel reaches.

    `stage` is the part a cancel stops: the wait for its claims, then the scrape."""

    request: RunRequest
    stage: asyncio.Task[Outcome] | None = None
    marker: CancelMarker | None = None
    started_at: datetime | None = None
    skipped_pages: Counter[str] = field(default_factory=Counter)
    checkpoint: RunCheckpoint | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def cancel(self, marker: CancelMarker) -> None:
        if self.marker is not None:
            return
        self.marker = marker
        if self.stage is not None:
            self.stage.cancel()


def duration_ms(started_at: datetime, completed_at: datetime) -> int:
    return round(max(0.0, (completed_at - started_at).total_seconds()) * 1000)


def describe(error: BaseException, request: RunRequest) -> str:
    if isinstance(error, TimeoutError) and not str(error):
        return f"the job did not finish within its timeout of {request.timeout_seconds}s"
    return (str(error) or type(error).__name__)[:MAX_ERROR_MESSAGE_CHARS]


class JobExecutor:
    def __init__(
        self,
        publisher: JetStreamPublisher,
        scrapers: ScraperRegistry,
        metrics: RunnerMetrics,
        runner_id: str,
        clock: Clock,
        cancels: CancelBook,
        claims: ClaimBook,
        last_runs: LastRunWriter,
        polite: Politeness,
        js: JetStreamContext,
        checkpoints: KeyValue,
        screenshots: ScreenshotStore,
        parent_finishes: ParentFinishes,
        ack_wait_seconds: float,
    ) -> None:
        self._publisher = publisher
        self._scrapers = scrapers
        self._metrics = metrics
        self._runner_id = runner_id
        self._clock = clock
        self._cancels = cancels
        self._claims = claims
        self._last_runs = last_runs
        self._polite = polite
        self._js = js
        self._checkpoints = checkpoints
        self._screenshots = screenshots
        self._parent_finishes = parent_finishes
        self._ack_wait_seconds = ack_wait_seconds
        self._running: dict[str, RunningJob] = {}

    def cancel(self, marker: CancelMarker) -> None:
        """Stop the job `marker` names if this runner runs it (the `CancelBook` calls this)."""
        job = self._running.get(marker.job_id)
        if job is not None:
            log.info("cancelling job %s (by %s): %s", marker.job_id, marker.by, marker.reason)
            job.cancel(marker)

    async def handle(self, msg: Msg) -> None:
        """Never raises, except CancelledError after handing the message back."""
        request = await self._parse(msg)
        if request is None:
            return
        if msg.metadata.num_delivered > 1:
            self._metrics.redelivered.inc()
        marker = self._cancels.get(request.job_id)
        if marker is not None:
            await self._cancelled_unrun(msg, request, marker)
            return
        wait = self._until_due(request)
        if wait > NOT_BEFORE_SLACK_SECONDS:
            self._metrics.deferred.labels("not_before").inc()
            await settle_quietly(msg.nak(delay=wait), "defer", f"job {request.job_id}")
            return
        if request.job_id in self._running:
            # Another attempt of the same job is still settling on this very runner.
            self._metrics.deferred.labels("claimed").inc()
            await settle_quietly(
                msg.nak(delay=CLAIMED_AGAIN_DELAY_SECONDS), "defer", f"job {request.job_id}"
            )
            return
        job = RunningJob(request)
        self._running[request.job_id] = job
        try:
            await self._execute(msg, job)
        finally:
            self._running.pop(request.job_id, None)

    def _until_due(self, request: RunRequest) -> float:
        if request.not_before is None:
            return 0.0
        return (request.not_before - self._clock.now()).total_seconds()

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

    async def _cancelled_unrun(self, msg: Msg, request: RunRequest, marker: CancelMarker) -> None:
        """A job cancelled before it ran ends `cancelled` without running."""
        event = JobEvent(
            job=request,
            status=JobStatus.CANCELLED,
            attempt=request.attempt,
            at=self._clock.now(),
            runner_id=self._runner_id,
            error_message=marker.reason or DEFAULT_CANCEL_REASON,
            cancelled_by=marker.by,
        )
        try:
            await publish_event(self._publisher, event)
            await self._parent_finishes.announce(event)
        except PublishFailedError as exc:
            self._metrics.nats_errors.labels("publish").inc()
            log.warning("job %s: %s; handing it back", request.job_id, exc)
            await settle_quietly(
                msg.nak(delay=PUBLISH_RETRY_DELAY_SECONDS), "nak", f"job {request.job_id}"
            )
            return
        await self._last_runs.record(event)
        await settle_quietly(msg.ack(), "settle", f"job {request.job_id}")
        log.info("job %s cancelled before it ran (by %s)", request.job_id, marker.by)
        self._metrics.cancelled.labels("queued").inc()
        self._metrics.jobs.labels("cancelled").inc()

    async def _execute(self, msg: Msg, job: RunningJob) -> None:
        request = job.request
        sends = AttemptSends(self._publisher)
        batcher = ItemBatcher(sends, request, self._clock, self._count_skip)
        checkpoint = RunCheckpoint(
            self._checkpoints,
            self._js,
            request,
            self._runner_id,
            self._clock,
            batcher,
            job.skipped_pages,
        )
        job.checkpoint = checkpoint
        claims = self._claims.for_job(request, lambda reason: self._lost_claim(job, reason))
        self._metrics.running.inc()
        try:
            async with progress_acks(
                msg,
                request.job_id,
                self._clock,
                self._ack_wait_seconds,
                overrun_deadline(self._clock.now(), request.timeout_seconds),
                self._metrics.progress_acks,
            ):
                outcome = await self._outcome(job, msg, claims, sends, batcher)
                await sends.confirmed()
                if outcome.event is not None:
                    await publish_event(self._publisher, outcome.event)
                    await self._parent_finishes.announce(outcome.event)
                    await self._last_runs.record(outcome.event)
                    if outcome.event.status.is_terminal:
                        await checkpoint.discard()
                if outcome.retry is not None:
                    retry = outcome.retry
                    subject = names.retry_subject(retry.pool, retry.priority)
                    await publish(self._publisher, subject, retry, retry.msg_id)
                if outcome.decision is not None:
                    decision = outcome.decision
                    await publish(self._publisher, decision.subject, decision, decision.msg_id)
            await claims.release()
            await settle_quietly(outcome.settle(), "settle", f"job {request.job_id}")
            if outcome.metric_status is not None:
                self._metrics.jobs.labels(outcome.metric_status).inc()
        except PublishFailedError as exc:
            self._metrics.nats_errors.labels("publish").inc()
            log.warning("job %s: %s; handing it back", request.job_id, exc)
            await claims.release()
            await settle_quietly(
                msg.nak(delay=PUBLISH_RETRY_DELAY_SECONDS), "nak", f"job {request.job_id}"
            )
        except asyncio.CancelledError:
            log.info(
                "job %s attempt %d interrupted; handing it back", request.job_id, request.attempt
            )
            await claims.release()
            await settle_quietly(msg.nak(), "hand back", f"job {request.job_id}")
            self._metrics.jobs.labels("handed_back").inc()
            raise
        finally:
            self._metrics.running.dec()
            self._metrics.items_scraped.inc(batcher.items)

    def _lost_claim(self, job: RunningJob, reason: str) -> None:
        policy = job.request.concurrency_policy.value
        job.cancel(
            CancelMarker(
                job_id=job.request.job_id,
                reason=reason,
                by=f"overlap policy {policy}",
                at=self._clock.now(),
            )
        )

    async def _outcome(
        self,
        job: RunningJob,
        msg: Msg,
        claims: JobClaims,
        sends: AttemptSends,
        batcher: ItemBatcher,
    ) -> Outcome:
        """Run the stage as its own task, so that a cancel stops it and not the handling
        of the message; a cancel of this task (the runner stops) hands the job back."""
        stage = asyncio.create_task(
            self._stage(job, msg, claims, sends, batcher), name=f"runner-job-{job.request.job_id}"
        )
        job.stage = stage
        try:
            outcome = await stage
        except asyncio.CancelledError:
            this = asyncio.current_task()
            if job.marker is None or (this is not None and this.cancelling()):
                raise
        else:
            if job.marker is None or outcome.metric_status in ("completed", "skipped", None):
                return outcome
            # The scraper turned the cancel into an error: it still is a cancel.
        return await self._cancelled(job, msg, sends, batcher)

    async def _cancelled(
        self, job: RunningJob, msg: Msg, sends: AttemptSends, batcher: ItemBatcher
    ) -> Outcome:
        """The stage was stopped by a cancel: keep what it scraped, and end `cancelled`."""
        marker = job.marker
        assert marker is not None
        await batcher.flush()
        await sends.confirmed()
        reason = marker.reason or DEFAULT_CANCEL_REASON
        self._metrics.cancelled.labels("running" if job.started_at else "queued").inc()
        log.info("job %s cancelled (by %s): %s", job.request.job_id, marker.by, reason)
        if job.started_at is None:  # still waiting for its claims
            event = JobEvent(
                job=job.request,
                status=JobStatus.CANCELLED,
                attempt=job.request.attempt,
                at=self._clock.now(),
                runner_id=self._runner_id,
                error_message=reason,
                cancelled_by=marker.by,
            )
            return Outcome(event, msg.ack, "cancelled")
        attempt = Attempt(
            job.request, job.request.attempt, self._runner_id, job.started_at, job.metadata
        )
        return self._finished(
            job,
            attempt,
            JobStatus.CANCELLED,
            msg.ack,
            "cancelled",
            batcher,
            error=None,
            error_message=reason,
            cancelled_by=marker.by,
        )

    async def _stage(
        self,
        job: RunningJob,
        msg: Msg,
        claims: JobClaims,
        sends: AttemptSends,
        batcher: ItemBatcher,
    ) -> Outcome:
        request = job.request
        refusal = await claims.acquire()
        if refusal is not None:
            return self._refused(request, msg, refusal)
        job.started_at = self._clock.now()
        attempt = Attempt(request, request.attempt, self._runner_id, job.started_at, job.metadata)
        await sends.send_event(attempt.event(JobStatus.RUNNING, attempt.started_at))
        log.info("job %s attempt %d running", request.job_id, attempt.number)
        return await self._run(job, attempt, msg, sends, batcher)

    def _refused(self, request: RunRequest, msg: Msg, refusal: Refusal) -> Outcome:
        if refusal.skip is None:
            log.info("job %s handed back for now: %s", request.job_id, refusal.message)
            self._metrics.deferred.labels(refusal.defer).inc()
            return Outcome(None, lambda: msg.nak(delay=refusal.delay), None)
        log.info("job %s skipped: %s", request.job_id, refusal.message)
        self._metrics.skipped.labels(refusal.skip).inc()
        now = self._clock.now()
        event = JobEvent(
            job=request,
            status=JobStatus.SKIPPED,
            attempt=request.attempt,
            at=now,
            runner_id=self._runner_id,
            error_message=refusal.message,
        )
        return Outcome(event, msg.ack, "skipped", decision=_overlap_skipped(request, refusal, now))

    async def _run(
        self,
        job: RunningJob,
        attempt: Attempt,
        msg: Msg,
        sends: AttemptSends,
        batcher: ItemBatcher,
    ) -> Outcome:
        request = attempt.request
        assert job.checkpoint is not None
        context = ScrapeContext(
            job_id=request.job_id,
            scheduled_job_id=request.scheduled_job_id,
            attempt=attempt.number,
            skip=self._count_skip,
            skip_page=lambda url, reason: self._count_page_skip(job, url, reason),
            polite=self._polite,
            checkpoint=job.checkpoint,
            keep_screenshot=self._screenshots.keeper(request.job_id, attempt.number),
            metadata=attempt.metadata,
        )
        try:
            async with asyncio.timeout(request.timeout_seconds):
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
            return self._failure(job, attempt, msg, exc, batcher)
        return self._finished(
            job, attempt, JobStatus.COMPLETED, msg.ack, "completed", batcher, error=None
        )

    def _failure(
        self, job: RunningJob, attempt: Attempt, msg: Msg, error: Exception, batcher: ItemBatcher
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
            now = self._clock.now()
            delay = retry_delay_seconds(request.retry_backoff_seconds, attempt.number)
            retry = request.model_copy(
                update={"attempt": attempt.number + 1, "not_before": now + timedelta(seconds=delay)}
            )
            message = describe(error, request)
            event = JobEvent(
                job=retry,
                status=JobStatus.PENDING,
                attempt=retry.attempt,
                at=now,
                error_message=message,
                error_type=type(error).__name__,
                ended_attempt=attempt.ended(JobStatus.FAILED, now, error, message),
                metadata=self._metadata(attempt),
            )
            return Outcome(event, msg.ack, "retried", retry=retry)
        return self._finished(
            job, attempt, JobStatus.FAILED, msg.ack, "failed", batcher, error=error
        )

    def _finished(
        self,
        job: RunningJob,
        attempt: Attempt,
        status: JobStatus,
        settle: Callable[[], Awaitable[None]],
        metric_status: str,
        batcher: ItemBatcher,
        error: Exception | None,
        **fields: Any,
    ) -> Outcome:
        completed_at = self._clock.now()
        elapsed_ms = duration_ms(attempt.started_at, completed_at)
        self._metrics.duration.observe(elapsed_ms / 1000)
        described: dict[str, Any] = {
            "error_message": None if error is None else describe(error, attempt.request),
            "error_type": None if error is None else type(error).__name__,
        } | fields
        event = attempt.event(
            status,
            completed_at,
            completed_at=completed_at,
            duration_ms=elapsed_ms,
            properties_scraped=batcher.items,
            item_batches=batcher.batches,
            skipped_pages=dict(job.skipped_pages) or None,
            ended_attempt=attempt.ended(status, completed_at, error, described["error_message"]),
            metadata=self._metadata(attempt),
            **described,
        )
        return Outcome(event, settle, metric_status)

    def _metadata(self, attempt: Attempt) -> dict[str, Any] | None:
        return checked_metadata(
            attempt.metadata,
            attempt.request.job_id,
            lambda reason: self._metrics.metadata_refused.labels(reason).inc(),
        )

    def _count_skip(self, reason: str) -> None:
        self._metrics.items_skipped.labels(reason).inc()

    def _count_page_skip(self, job: RunningJob, url: str, reason: str) -> None:
        job.skipped_pages[reason] += 1
        self._metrics.pages_skipped.labels(reason).inc()
        log.info("job %s skipped page %s (%s)", job.request.job_id, url, reason)


async def _close(items: AsyncIterator[Any]) -> None:
    """Run an async generator's cleanup (e.g. closing its HTTP client) right away."""
    aclose = getattr(items, "aclose", None)
    if aclose is not None:
        await aclose()


def _overlap_skipped(request: RunRequest, refusal: Refusal, now: datetime) -> Decision | None:
    """The decision record of a run of a schedule the overlap policy skipped."""
    if request.scheduled_job_id is None:
        return None
    return Decision(
        scheduled_job_id=request.scheduled_job_id,
        kind=DecisionKind.OVERLAP_SKIPPED,
        at=now,
        slot=request.scheduled_for,
        job_id=request.job_id,
        cause_job_id=refusal.holder_job_id,
        note=refusal.message,
    )
