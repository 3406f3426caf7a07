"""`jobs.cancel`, the runner's side: the markers in KV `cancels`, and the request handler.

A cancel is a marker, not a message to whoever runs the job: a job can be running on any
runner, queued in JOBS, waiting for its retry, or not published yet, and a marker reaches
it in every case. Every runner follows the bucket with a watch (`CancelBook`), keeps the
cancelled ids in memory, stops a job it runs as soon as its marker arrives, and ends a job
it takes later `cancelled` without running it. Any runner answers the request (queue group
`runners`): it writes the marker, then says where the job is.
"""

import logging
from collections.abc import Callable
from datetime import timedelta

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from nats.js.kv import KeyValue
from pydantic import ValidationError

from natscron_runner.metrics import RunnerMetrics
from natscron_shared.contract import names
from natscron_shared.contract.cancel import CancelMarker, CancelReply, CancelRequest, Found
from natscron_shared.contract.claims import JobClaim
from natscron_shared.contract.errors import UnavailableError
from natscron_shared.nats.connection import TRANSIENT_NATS_ERRORS, to_json
from natscron_shared.nats.job_events import last_job_event
from natscron_shared.nats.kv_watch import KvMirror
from natscron_shared.nats.request_reply import Endpoint
from natscron_shared.runtime.clock import Clock

log = logging.getLogger(__name__)

MAX_CANCEL_BYTES = 16 * 1024
"""A cancel names a job and a reason of at most 500 characters; anything bigger is a mistake."""
PRUNE_FIRST_AT = 1024

OnCancel = Callable[[CancelMarker], None]


class CancelBook(KvMirror[CancelMarker]):
    """The live set of cancelled job ids, fed by a watch of KV `cancels`: never a poll,
    so a runner learns of a cancel within milliseconds, and keeps nothing stale longer
    than the bucket does.

    JetStream expires a marker after the bucket's TTL without telling watchers, so the
    book drops markers older than `ttl_seconds` itself, whenever it has doubled in size.
    """

    def __init__(self, clock: Clock, ttl_seconds: float, on_cancel: OnCancel | None = None) -> None:
        super().__init__(_parse_marker)
        self._clock = clock
        self._ttl = timedelta(seconds=ttl_seconds)
        self._prune_at = PRUNE_FIRST_AT
        self.on_cancel = on_cancel
        """Called with each marker the watch delivers (the runner stops that job)."""

    def put(self, key: str, value: CancelMarker) -> None:
        super().put(key, value)
        if len(self._values) >= self._prune_at:
            self._prune()
        if self.on_cancel is not None:
            self.on_cancel(value)

    def _prune(self) -> None:
        oldest = self._clock.now() - self._ttl
        self._values = {k: m for k, m in self._values.items() if m.at >= oldest}
        self._prune_at = max(PRUNE_FIRST_AT, 2 * len(self._values))


def _parse_marker(key: str, value: bytes) -> CancelMarker | None:
    try:
        marker = CancelMarker.model_validate_json(value)
    except ValidationError:
        log.warning("ignoring an unreadable KV %s entry %r", names.KV_CANCELS, key)
        return None
    if marker.job_id != key:
        log.warning("ignoring KV cancels entry %r: it names %r", key, marker.job_id)
        return None
    return marker


class CancelHandler:
    """Serves `jobs.cancel`: writes the marker, then says where the job is.

    The marker is written whatever the answer: a job seen nowhere may still be published
    (a trigger in flight), and one seen finished may be about to be retried by nobody,
    harmlessly. Where: a claim `job.<id>` in KV `running` means a runner executes it now;
    otherwise its last event in EVENTS tells queued (pending or running: a retry, or a
    redelivery of a job whose runner died) from finished; no event at all is unknown.
    """

    def __init__(
        self,
        js: JetStreamContext,
        cancels: KeyValue,
        running: KeyValue,
        clock: Clock,
        metrics: RunnerMetrics,
    ) -> None:
        self._js = js
        self._cancels = cancels
        self._running = running
        self._clock = clock
        self._metrics = metrics

    def endpoint(self) -> Endpoint[CancelRequest]:
        """`jobs.cancel`, answered by one runner of all (the service's queue group)."""
        return Endpoint(
            names.JOBS_CANCEL,
            CancelRequest,
            self.handle,
            "Cancel a running or queued job; any runner answers",
            max_bytes=MAX_CANCEL_BYTES,
        )

    async def handle(self, request: CancelRequest) -> CancelReply:
        marker = CancelMarker(
            job_id=request.job_id, reason=request.reason, by=request.by, at=self._clock.now()
        )
        try:
            await self._cancels.put(request.job_id, to_json(marker))
            found, message = await self._where(request.job_id)
        except TRANSIENT_NATS_ERRORS as exc:
            self._metrics.nats_errors.labels("cancel").inc()
            raise UnavailableError(f"could not record the cancel: {type(exc).__name__}") from exc
        self._metrics.cancel_requests.labels(found).inc()
        log.info("cancel of job %s by %s (%s): %s", request.job_id, request.by, found, message)
        return CancelReply(job_id=request.job_id, found=found, message=message)

    async def _where(self, job_id: str) -> tuple[Found, str]:
        try:
            entry = await self._running.get(names.running_job_key(job_id))
        except NotFoundError:
            pass
        else:
            try:
                runner = JobClaim.model_validate_json(entry.value or b"").runner_id
            except ValidationError:
                runner = "(unreadable claim)"
            return "running", f"job {job_id} is running on runner {runner}; it is being stopped"
        event = await last_job_event(self._js, job_id)
        if event is None:
            return "unknown", (
                f"no event of job {job_id} was seen; if it comes, it ends cancelled unrun"
            )
        if event.status.is_terminal:
            return "finished", f"job {job_id} already ended {event.status.value}; nothing to stop"
        return "queued", (
            f"job {job_id} waits for a runner (attempt {event.attempt}); it ends cancelled"
            " without running"
        )
