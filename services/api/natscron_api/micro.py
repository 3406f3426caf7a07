"""The NATS face: request/reply endpoints under `natscron.api.` as the NATS micro service
`natscron-api` (`natscron_shared.nats.request_reply`: discoverable with `$SRV.INFO` /
`$SRV.PING` / `$SRV.STATS`, one error shape), over the same `Operations` and reply models as
the HTTP face.

A request is a JSON body (`natscron_api.requests`; empty means `{}`); a success is the reply
model as JSON. An error carries the micro headers (`Nats-Service-Error-Code`: the HTTP status
of the code, `Nats-Service-Error`: the sentence) and the body `{"error": {"code", "message"}}`,
the same as over HTTP. Anyone allowed to publish on `natscron.api.>` may call it: NATS
permissions are its authorisation.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from prometheus_client import CollectorRegistry
from pydantic import BaseModel
from pymongo.errors import ConnectionFailure

from natscron_api.operations import Operations
from natscron_api.requests import (
    Backfill,
    BulkCancelJobs,
    CancelJob,
    CreateSchedule,
    DescribeSchedule,
    ExplainSchedule,
    JobRef,
    ListJobs,
    ListSchedules,
    Nothing,
    PauseSchedule,
    PreviewSchedule,
    ReplaceSchedule,
    RetryJob,
    ScheduleRef,
    ScheduleStats,
)
from natscron_api.views import BulkControl
from natscron_shared.contract import names
from natscron_shared.contract.messages import TriggerRequest
from natscron_shared.nats.connection import TRANSIENT_NATS_ERRORS
from natscron_shared.nats.request_reply import Backend, Endpoint, MicroService

SERVICE_NAME = "natscron-api"
BACKENDS = (Backend("NATS", TRANSIENT_NATS_ERRORS), Backend("MongoDB", (ConnectionFailure,)))


@dataclass(frozen=True)
class ApiEndpoint:
    subject: str
    """Below `natscron.api.`"""
    request: type[BaseModel]
    call: Callable[[Operations, Any], Awaitable[BaseModel]]
    description: str

    def served_by(self, operations: Operations) -> Endpoint[Any]:
        return Endpoint(
            f"{names.API_PREFIX}.{self.subject}",
            self.request,
            partial(self.call, operations),
            self.description,
            name=self.subject.replace(".", "-"),
        )


ENDPOINTS: tuple[ApiEndpoint, ...] = (
    ApiEndpoint(
        "schedules.list",
        ListSchedules,
        lambda ops, r: ops.queries.list_scheduled_jobs(
            r.status, r.selector, r.limit, r.cursor, r.search, r.count
        ),
        "scheduled jobs, sorted by id, by cursor",
    ),
    ApiEndpoint(
        "schedules.get",
        ScheduleRef,
        lambda ops, r: ops.queries.scheduled_job(r.scheduled_job_id),
        "one scheduled job",
    ),
    ApiEndpoint(
        "schedules.describe",
        DescribeSchedule,
        lambda ops, r: ops.queries.scheduled_job_detail(
            r.scheduled_job_id, r.include_runs, r.limit
        ),
        "a scheduled job and its newest runs",
    ),
    ApiEndpoint(
        "schedules.preview",
        PreviewSchedule,
        lambda ops, r: ops.specs.preview(r.scheduled_job_id, r.count, r.after),
        "the next fire times, and the schedule in words",
    ),
    ApiEndpoint(
        "schedules.explain",
        ExplainSchedule,
        lambda ops, r: ops.explain.explain(r.scheduled_job_id, r.start, r.end),
        "why each slot in a range fired, moved, merged or did not run",
    ),
    ApiEndpoint(
        "schedules.backfill",
        Backfill,
        lambda ops, r: ops.commands.backfill(r.scheduled_job_id, r.start, r.end, r.dry_run),
        "run the past slots in a range that never ran (through a ticker)",
    ),
    ApiEndpoint(
        "schedules.stats",
        ScheduleStats,
        lambda ops, r: ops.queries.job_stats(r.scheduled_job_id, r.hours),
        "run statistics of a scheduled job",
    ),
    ApiEndpoint(
        "schedules.pause",
        PauseSchedule,
        lambda ops, r: ops.specs.pause(r.scheduled_job_id, r.reason),
        "pause an active scheduled job",
    ),
    ApiEndpoint(
        "schedules.resume",
        ScheduleRef,
        lambda ops, r: ops.specs.resume(r.scheduled_job_id),
        "resume a paused scheduled job",
    ),
    ApiEndpoint(
        "schedules.delete",
        ScheduleRef,
        lambda ops, r: ops.specs.delete(r.scheduled_job_id),
        "delete a scheduled job (its document and runs are kept)",
    ),
    ApiEndpoint(
        "schedules.bulk.pause",
        BulkControl,
        lambda ops, r: ops.specs.bulk("pause", r.ids, r.selector, r.reason),
        "pause many, by ids or label selector",
    ),
    ApiEndpoint(
        "schedules.bulk.resume",
        BulkControl,
        lambda ops, r: ops.specs.bulk("resume", r.ids, r.selector),
        "resume many, by ids or label selector",
    ),
    ApiEndpoint(
        "schedules.bulk.delete",
        BulkControl,
        lambda ops, r: ops.specs.bulk("delete", r.ids, r.selector),
        "delete many, by ids or label selector",
    ),
    ApiEndpoint(
        "schedules.create",
        CreateSchedule,
        lambda ops, r: ops.specs.create(r.spec, r.unchecked),
        "create a scheduled job (fails if its id exists)",
    ),
    ApiEndpoint(
        "schedules.replace",
        ReplaceSchedule,
        lambda ops, r: ops.specs.replace(r.scheduled_job_id, r.spec, r.unchecked),
        "create or replace a scheduled job",
    ),
    ApiEndpoint(
        "jobs.list",
        ListJobs,
        lambda ops, r: ops.queries.executions(
            r.scheduled_job_id, r.status, r.trigger, r.since, r.until, r.limit, r.cursor, r.offset
        ),
        "jobs (executions), newest first, by cursor",
    ),
    ApiEndpoint("jobs.get", JobRef, lambda ops, r: ops.jobs.get(r.job_id), "one job"),
    ApiEndpoint(
        "jobs.cancel",
        CancelJob,
        lambda ops, r: ops.commands.cancel(r.job_id, r.reason, r.by),
        "cancel a running or queued job",
    ),
    ApiEndpoint(
        "jobs.bulk.cancel",
        BulkCancelJobs,
        lambda ops, r: ops.cancels.cancel(r.ids, r.selector, r.reason, r.by),
        "cancel many jobs, by ids or the label selector of their scheduled jobs",
    ),
    ApiEndpoint(
        "jobs.retry",
        RetryJob,
        lambda ops, r: ops.commands.retry(r.job_id, r.priority),
        "run a failed or cancelled job again, as a new job linked to it",
    ),
    ApiEndpoint(
        "trigger",
        TriggerRequest,
        lambda ops, r: ops.commands.trigger(r),
        "run a scheduled job now, or an ad-hoc scraper run",
    ),
    ApiEndpoint(
        "status",
        Nothing,
        lambda ops, r: ops.status.status(),
        "leader, lane lag, runners, scrapers",
    ),
    ApiEndpoint(
        "metrics",
        Nothing,
        lambda ops, r: ops.status.metrics(),
        "system-wide run statistics and counts",
    ),
)


def micro_face(operations: Operations, registry: CollectorRegistry) -> MicroService:
    """Every endpoint of `ENDPOINTS`, over `operations`."""
    return MicroService(
        SERVICE_NAME,
        "natscron: schedules, jobs, triggers, statistics",
        [endpoint.served_by(operations) for endpoint in ENDPOINTS],
        registry,
        unavailable=BACKENDS,
    )
