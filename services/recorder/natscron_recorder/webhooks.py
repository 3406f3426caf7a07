"""Webhooks: a run's outcome POSTed to the URLs its schedule names; see docs/architecture.md,
"Webhooks".

The sender pulls EVENTS through its own durable consumer (`webhooks`, `jobs.events.>`), so
calling slow receivers never holds up recording and a MongoDB outage never holds up the
calls. An event that is not final, or whose schedule has no webhook for its status, is
acked at once. Any other is delivered to each matching webhook concurrently (at most
`webhook_concurrency` events at a time), each call retried with exponential backoff on
connection errors, timeouts, 408, 429 and 5xx; the event is acked once every delivery
ended (delivered or given up), and kept alive with in-progress acks meanwhile. Delivery is
at least once: a recorder that stops or dies mid-way leaves the event to be delivered
again, and receivers dedupe on `X-Natscron-Delivery`.
"""

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
import time
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from urllib.parse import urlsplit

import httpx
import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from prometheus_client import Counter
from pydantic import BaseModel, ValidationError

from natscron_recorder.metrics import RecorderMetrics
from natscron_recorder.webhook_directory import WebhookDirectory
from natscron_shared.contract import names
from natscron_shared.contract.enums import JobStatus, Priority, Trigger
from natscron_shared.contract.messages import JobEvent
from natscron_shared.contract.models import Webhook
from natscron_shared.nats.connection import TRANSIENT_NATS_ERRORS, settle_quietly
from natscron_shared.nats.jetstream_check import consumer_still_exists
from natscron_shared.nats.jetstream_layout import WEBHOOKS_ACK_WAIT_SECONDS
from natscron_shared.runtime.settings import Settings

log = logging.getLogger(__name__)

DELIVERY_HEADER = "X-Natscron-Delivery"
SIGNATURE_HEADER = "X-Natscron-Signature"
USER_AGENT = "natscron-webhooks"
FETCH_WAIT_SECONDS = 1.0
FETCH_ERROR_BACKOFF_SECONDS = 1.0
KEEP_ALIVE_SECONDS = WEBHOOKS_ACK_WAIT_SECONDS / 3
RETRIED_STATUSES = frozenset({408, 429})
"""Besides every 5xx: answers that say "later". Any other non-2xx answer is final."""


@dataclass(frozen=True)
class WebhookSettings:
    concurrency: int
    timeout_seconds: float
    max_attempts: int
    backoff_seconds: float

    @classmethod
    def of(cls, settings: Settings) -> "WebhookSettings":
        return cls(
            concurrency=settings.webhook_concurrency,
            timeout_seconds=settings.webhook_timeout_seconds,
            max_attempts=settings.webhook_max_attempts,
            backoff_seconds=settings.webhook_backoff_seconds,
        )

    def backoff(self, failed_calls: int) -> float:
        """The pause after the `failed_calls`-th failed call: 1, 2, 4, 8 ... times the base."""
        return float(self.backoff_seconds * 2 ** (failed_calls - 1))


class WebhookPayload(BaseModel):
    """The JSON body of a webhook call."""

    delivery: str
    job_id: str
    scheduled_job_id: str
    status: JobStatus
    attempt: int
    trigger: Trigger
    priority: Priority
    scraper: str
    scheduled_for: datetime | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    duration_ms: int | None
    properties_scraped: int | None
    item_batches: int | None
    error_message: str | None
    error_type: str | None
    cancelled_by: str | None
    runner_id: str | None
    at: datetime

    @classmethod
    def of(cls, event: JobEvent) -> "WebhookPayload":
        job = event.job
        assert job.scheduled_job_id is not None, "only scheduled jobs have webhooks"
        return cls(
            delivery=delivery_id(event),
            job_id=job.job_id,
            scheduled_job_id=job.scheduled_job_id,
            status=event.status,
            attempt=event.attempt,
            trigger=job.trigger,
            priority=job.priority,
            scraper=job.scraper,
            scheduled_for=job.scheduled_for,
            created_at=job.created_at,
            started_at=event.started_at,
            completed_at=event.completed_at,
            duration_ms=event.duration_ms,
            properties_scraped=event.properties_scraped,
            item_batches=event.item_batches,
            error_message=event.error_message,
            error_type=event.error_type,
            cancelled_by=event.cancelled_by,
            runner_id=event.runner_id,
            at=event.at,
        )


def delivery_id(event: JobEvent) -> str:
    """`<job_id>:<status>`: the same for every delivery of one outcome, for receivers to
    dedupe on (a job has one final status)."""
    return f"{event.job.job_id}:{event.status.value}"


def signature(secret: str, body: bytes) -> str:
    """`sha256=<hex>`: HMAC-SHA256 of the exact body bytes, keyed with the secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def matching_webhooks(event: JobEvent, directory: WebhookDirectory) -> list[Webhook]:
    """The webhooks to call for `event`: none unless it is final and of a scheduled job."""
    scheduled_job_id = event.job.scheduled_job_id
    if not event.status.is_terminal or scheduled_job_id is None:
        return []
    return [hook for hook in directory.webhooks_of(scheduled_job_id) if event.status in hook.on]


def _where(url: str) -> str:
    """The URL without its path and query, which may hold a token, for the logs."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")


class Verdict(Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    FINAL = "final"


class WebhookSender:
    def __init__(
        self,
        js: JetStreamContext,
        directory: WebhookDirectory,
        settings: WebhookSettings,
        metrics: RecorderMetrics,
        received: Counter,
        stopping: asyncio.Event,
    ) -> None:
        self._js = js
        self._directory = directory
        self._settings = settings
        self._metrics = metrics
        self._received = received.labels(names.WEBHOOKS_CONSUMER)
        self._stopping = stopping
        self._subscription: JetStreamContext.PullSubscription | None = None
        self._client = httpx.AsyncClient(
            timeout=settings.timeout_seconds,
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
        )
        self._in_flight: set[asyncio.Task[None]] = set()

    async def bind(self) -> None:
        self._subscription = await self._js.pull_subscribe_bind(
            durable=names.WEBHOOKS_CONSUMER, stream=names.STREAM_EVENTS
        )

    async def run(self) -> None:
        """Fetch and deliver until `stopping` is set, then let the calls in flight end;
        call `bind()` first."""
        assert self._subscription is not None, "bind() first"
        try:
            while not self._stopping.is_set():
                room = self._settings.concurrency - len(self._in_flight)
                if room <= 0:
                    await self._wait_for_room()
                    continue
                try:
                    msgs: list[Msg] = await self._subscription.fetch(
                        batch=room, timeout=FETCH_WAIT_SECONDS
                    )
                except TimeoutError:
                    continue
                except TRANSIENT_NATS_ERRORS:
                    self._metrics.nats_errors.labels("fetch").inc()
                    log.warning("fetching from %s failed; retrying", names.WEBHOOKS_CONSUMER)
                    await consumer_still_exists(
                        self._js, names.STREAM_EVENTS, names.WEBHOOKS_CONSUMER
                    )
                    await self._pause(FETCH_ERROR_BACKOFF_SECONDS)
                    continue
                self._received.inc(len(msgs))
                for msg in msgs:
                    if self._stopping.is_set():  # taken after the stop: for the next one
                        await settle_quietly(msg.nak(), "nak", f"a message on {msg.subject}")
                    else:
                        await self._take(msg)
        except asyncio.CancelledError:  # past the grace period: left unacked, sent again
            for task in self._in_flight:
                task.cancel()
            raise
        finally:
            if self._in_flight:
                await asyncio.gather(*self._in_flight, return_exceptions=True)

    async def close(self) -> None:
        if self._subscription is not None:
            with contextlib.suppress(nats.errors.Error):
                await self._subscription.unsubscribe()
            self._subscription = None
        await self._client.aclose()

    async def _wait_for_room(self) -> None:
        stop = asyncio.create_task(self._stopping.wait())
        try:
            await asyncio.wait({stop, *self._in_flight}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()

    async def _take(self, msg: Msg) -> None:
        try:
            event = JobEvent.model_validate_json(msg.data)
        except ValidationError:
            # The recorder's own consumer counts and logs it; nothing to call here.
            await settle_quietly(msg.term(), "terminate", f"a message on {msg.subject}")
            return
        hooks = matching_webhooks(event, self._directory)
        if not hooks:
            await settle_quietly(msg.ack(), "ack", f"a message on {msg.subject}")
            return
        task = asyncio.create_task(self._deliver_event(msg, event, hooks))
        self._in_flight.add(task)
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("a webhook delivery failed unexpectedly", exc_info=error)

    async def _deliver_event(self, msg: Msg, event: JobEvent, hooks: list[Webhook]) -> None:
        keep_alive = asyncio.create_task(_keep_alive(msg))
        try:
            body = WebhookPayload.of(event).model_dump_json().encode()
            ended = await asyncio.gather(*(self._deliver(event, body, hook) for hook in hooks))
        finally:
            keep_alive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keep_alive
        if all(ended):
            await settle_quietly(msg.ack(), "ack", f"a message on {msg.subject}")
        else:  # stopping: another recorder (or this one, restarted) delivers it again
            await settle_quietly(msg.nak(), "nak", f"a message on {msg.subject}")

    async def _deliver(self, event: JobEvent, body: bytes, hook: Webhook) -> bool:
        """Call `hook` until delivered or given up (True), or until stopping (False)."""
        delivery = delivery_id(event)
        headers = {"Content-Type": "application/json", DELIVERY_HEADER: delivery}
        if hook.secret_variable is not None:
            secret = os.environ.get(hook.secret_variable)
            if not secret:
                self._metrics.webhook_deliveries.labels("missing_secret").inc()
                log.warning(
                    "not calling the webhook %s of %s: its secret %r is not set (%s)",
                    _where(hook.url),
                    delivery,
                    hook.secret,
                    hook.secret_variable,
                )
                return True
            headers[SIGNATURE_HEADER] = signature(secret, body)
        for call in range(1, self._settings.max_attempts + 1):
            verdict, detail = await self._call(hook.url, body, headers)
            if verdict is Verdict.DELIVERED:
                self._metrics.webhook_deliveries.labels("delivered").inc()
                return True
            if verdict is Verdict.FINAL or call == self._settings.max_attempts:
                self._metrics.webhook_deliveries.labels("gave_up").inc()
                log.warning(
                    "giving up the webhook %s of %s after %d call(s): %s",
                    _where(hook.url),
                    delivery,
                    call,
                    detail,
                )
                return True
            self._metrics.webhook_deliveries.labels("failed_attempt").inc()
            pause = self._settings.backoff(call)
            log.info(
                "webhook %s of %s failed (%s); call %d in %.1fs",
                _where(hook.url),
                delivery,
                detail,
                call + 1,
                pause,
            )
            if await self._pause(pause):
                return False
        raise AssertionError("the last call always returns")

    async def _call(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[Verdict, str]:
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._settings.timeout_seconds):
                async with self._client.stream(
                    "POST", url, content=body, headers=headers
                ) as response:
                    status = response.status_code
        except TimeoutError:
            return Verdict.RETRY, f"no answer within {self._settings.timeout_seconds:g}s"
        except httpx.TransportError as exc:  # refused, reset, timed out, garbled
            return Verdict.RETRY, f"{type(exc).__name__}: {exc}"
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            return Verdict.FINAL, f"{type(exc).__name__}: {exc}"
        finally:
            self._metrics.webhook_duration.observe(time.monotonic() - started)
        if 200 <= status < 300:
            return Verdict.DELIVERED, f"HTTP {status}"
        if status >= 500 or status in RETRIED_STATUSES:
            return Verdict.RETRY, f"HTTP {status}"
        return Verdict.FINAL, f"HTTP {status}"

    async def _pause(self, seconds: float) -> bool:
        """Wait `seconds` or until stopping; True if stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        return self._stopping.is_set()


async def _keep_alive(msg: Msg) -> None:
    """Tell JetStream the event is still being delivered, so it is not sent again."""
    while True:
        await asyncio.sleep(KEEP_ALIVE_SECONDS)
        await settle_quietly(msg.in_progress(), "extend", f"a message on {msg.subject}")
