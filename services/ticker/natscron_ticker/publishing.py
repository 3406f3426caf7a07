"""Publishing a job: its run request on `jobs.run.<priority>`, then its `pending` event.

The run request goes first, and its `pending` event only once the request is acked: if
the event is lost the runner's own events still carry the whole request, whereas a
`pending` event for a request never stored would leave a job that never runs. The job
id is the `Nats-Msg-Id`, so publishing a slot again (a retry, two tickers during a
failover) stores it once.

A trigger publishes one job and waits for each ack; the scheduler publishes the slots
of a firing pipelined (`publish_requests`, then `publish_pending`), so a burst costs
about one round trip per step, not one per slot.
"""

from collections.abc import Callable, Sequence
from datetime import datetime

from nats.js.api import PubAck

from natscron_shared import names
from natscron_shared.enums import JobStatus
from natscron_shared.messages import JobEvent, RunRequest, ScheduleEvent
from natscron_shared.nats_conn import JetStreamPublisher


def pending_event(request: RunRequest) -> JobEvent:
    return JobEvent(job=request, status=JobStatus.PENDING, attempt=1, at=request.created_at)


class JobPublisher:
    def __init__(self, publisher: JetStreamPublisher) -> None:
        self._publisher = publisher

    async def publish_job(self, request: RunRequest) -> bool:
        """Publish the job; False if JetStream already had it (a duplicate slot)."""
        ack = await self._publisher.publish(
            names.run_subject(request.priority), request, msg_id=request.job_id
        )
        pending = pending_event(request)
        await self._publisher.publish(
            names.job_event_subject(request.job_id), pending, msg_id=pending.msg_id
        )
        return not ack.duplicate

    async def publish_requests(
        self, requests: Sequence[RunRequest], check: Callable[[], None]
    ) -> list[PubAck]:
        """Send the run requests pipelined and return their acks, in order; raises the
        first error once all have ended. `check` runs right before each send."""
        return await self._publisher.publish_many(
            [(names.run_subject(r.priority), r, r.job_id) for r in requests], check
        )

    async def publish_pending(self, requests: Sequence[RunRequest]) -> None:
        """Send the `pending` events of acked run requests pipelined; raises the first
        error once all have ended."""
        events = [pending_event(request) for request in requests]
        await self._publisher.publish_many(
            [(names.job_event_subject(e.job.job_id), e, e.msg_id) for e in events]
        )

    async def publish_next_run(
        self,
        scheduled_job_id: str,
        next_run_at: datetime | None,
        at: datetime,
        remaining_runs: int | None = None,
    ) -> None:
        """In turn with the other pipelined publications of the process."""
        event = ScheduleEvent(
            scheduled_job_id=scheduled_job_id,
            next_run_at=next_run_at,
            at=at,
            remaining_runs=remaining_runs,
        )
        await self._publisher.publish_in_turn(
            names.scheduled_job_event_subject(scheduled_job_id), event
        )
