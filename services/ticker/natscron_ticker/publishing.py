"""Publishing a job: its run request on `jobs.run.<pool>.<priority>`, then its `pending`
event. The pool is in the request (from the spec, resolved when it was applied), so the
subject costs one string format per fire, nothing looked up.

The run request goes first, and its `pending` event only once the request is acked: if
the event is lost the runner's own events still carry the whole request, whereas a
`pending` event for a request never stored would leave a job that never runs. The job
id is the `Nats-Msg-Id`, so publishing a slot again (a retry, two tickers during a
failover) stores it once.

A trigger publishes one job and waits for each ack; the scheduler publishes a burst's
run requests through the `BulkPublisher` (`frame_runs` ahead, `publish_framed` at the
slot), then their `pending` events and next runs (`publish_pending`, `announce_all`), so
a burst costs about one round trip per step, not one per slot.
"""

from collections.abc import Callable, Sequence
from datetime import datetime

from natscron_shared.contract import names
from natscron_shared.contract.decisions import Decision
from natscron_shared.contract.enums import JobStatus
from natscron_shared.contract.messages import JobEvent, RunRequest, ScheduleEvent
from natscron_shared.nats.connection import JetStreamPublisher, to_json
from natscron_ticker.bulk_publish import BulkPublisher, Framed, Outcome, Prepared


def pending_event(request: RunRequest) -> JobEvent:
    return JobEvent(job=request, status=JobStatus.PENDING, attempt=1, at=request.created_at)


class JobPublisher:
    def __init__(self, publisher: JetStreamPublisher, bulk: BulkPublisher) -> None:
        self._publisher = publisher
        self._bulk = bulk

    async def publish_job(self, request: RunRequest) -> bool:
        """Publish the job; False if JetStream already had it (a duplicate slot)."""
        ack = await self._publisher.publish(
            names.run_subject(request.pool, request.priority), request, msg_id=request.job_id
        )
        pending = pending_event(request)
        await self._publisher.publish(
            names.job_event_subject(request.job_id), pending, msg_id=pending.msg_id
        )
        return not ack.duplicate

    def frame_runs(self, requests: Sequence[RunRequest]) -> Framed:
        """The run requests encoded for the wire, ahead of their sending (`publish_framed`)."""
        return self._bulk.frame(
            [
                Prepared(names.run_subject(r.pool, r.priority), to_json(r), r.job_id)
                for r in requests
            ]
        )

    async def publish_framed(self, framed: Framed, check: Callable[[], None]) -> list[Outcome]:
        """Send framed run requests pipelined and return each one's outcome, in order.
        `check` runs before the sends (see `BulkPublisher.publish_all`)."""
        return await self._bulk.publish_all(framed, check)

    async def publish_pending(self, requests: Sequence[RunRequest]) -> int:
        """Send the `pending` events of acked run requests pipelined; how many failed."""
        events = [pending_event(request) for request in requests]
        return _failures(
            await self._bulk.publish_all(
                [
                    Prepared(names.job_event_subject(e.job.job_id), to_json(e), e.msg_id)
                    for e in events
                ]
            )
        )

    async def announce_all(self, events: Sequence[ScheduleEvent]) -> int:
        """Send next-run announcements pipelined; how many failed."""
        return _failures(
            await self._bulk.publish_all(
                [
                    Prepared(names.scheduled_job_event_subject(e.scheduled_job_id), to_json(e))
                    for e in events
                ]
            )
        )

    async def publish_decisions(self, decisions: Sequence[Decision]) -> int:
        """Send decision records pipelined (`natscron_shared.contract.decisions`); how many
        failed. A record published again is stored once (its msg id)."""
        return _failures(
            await self._bulk.publish_all(
                [Prepared(d.subject, to_json(d), d.msg_id) for d in decisions]
            )
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


def _failures(outcomes: Sequence[Outcome]) -> int:
    return sum(1 for outcome in outcomes if isinstance(outcome, BaseException))
