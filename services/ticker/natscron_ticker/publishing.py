"""Publishing a job: its run request on `jobs.run.<priority>`, then its `pending` event.

The run request goes first: if the event is lost the runner's own events still carry
the whole request, whereas a `pending` event for a request never stored would leave
a job that never runs. The job id is the `Nats-Msg-Id`, so publishing a slot again
(a retry, two tickers during a failover) stores it once.
"""

from datetime import datetime

from natscron_shared import names
from natscron_shared.enums import JobStatus
from natscron_shared.messages import JobEvent, RunRequest, ScheduleEvent
from natscron_shared.nats_conn import JetStreamPublisher


class JobPublisher:
    def __init__(self, publisher: JetStreamPublisher) -> None:
        self._publisher = publisher

    async def publish_job(self, request: RunRequest) -> bool:
        """Publish the job; False if JetStream already had it (a duplicate slot)."""
        ack = await self._publisher.publish(
            names.run_subject(request.priority), request, msg_id=request.job_id
        )
        pending = JobEvent(job=request, status=JobStatus.PENDING, attempt=1, at=request.created_at)
        await self._publisher.publish(
            names.job_event_subject(request.job_id), pending, msg_id=pending.msg_id
        )
        return not ack.duplicate

    async def publish_next_run(
        self, scheduled_job_id: str, next_run_at: datetime | None, at: datetime
    ) -> None:
        event = ScheduleEvent(scheduled_job_id=scheduled_job_id, next_run_at=next_run_at, at=at)
        await self._publisher.publish(names.scheduled_job_event_subject(scheduled_job_id), event)
