"""The NATS face: request/reply endpoints under `natscron.api.` as a NATS micro service
(`natscron-api`, discoverable with `$SRV.INFO` / `$SRV.PING` / `$SRV.STATS`), over the same
`Operations` and reply models as the HTTP face.

A request is a JSON body (`natscron_api.requests`; empty means `{}`); a success is the reply
model as JSON. An error carries the micro headers (`Nats-Service-Error-Code`: the HTTP status
of the code, `Nats-Service-Error`: the sentence) and the body `{"error": {"code", "message"}}`,
the same as over HTTP. Anyone allowed to publish on `natscron.api.>` may call it: NATS
permissions are its authorisation.
"""

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from nats.aio.client import Client
from nats.micro import add_service
from nats.micro.request import Request
from nats.micro.service import Service
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel, ValidationError
from pymongo.errors import ConnectionFailure

from natscron_api.errors import ApiError, http_status, problems_sentence
from natscron_api.operations import Operations
from natscron_api.requests import (
    Backfill,
    CancelJob,
    CreateSchedule,
    DescribeSchedule,
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
from natscron_api.views import BulkControl, ErrorResponse
from natscron_shared.contract import names
from natscron_shared.contract.errors import NatscronError
from natscron_shared.contract.messages import TriggerRequest
from natscron_shared.nats.connection import TRANSIENT_NATS_ERRORS

log = logging.getLogger(__name__)

SERVICE_NAME = "natscron-api"
SERVICE_VERSION = "0.1.0"
UNAVAILABLE: tuple[type[BaseException], ...] = (*TRANSIENT_NATS_ERRORS, ConnectionFailure)


@dataclass(frozen=True)
class Endpoint:
    subject: str
    """Below `natscron.api.`"""
    request: type[BaseModel]
    call: Callable[[Operations, Any], Awaitable[BaseModel]]
    description: str

    @property
    def name(self) -> str:
        return self.subject.replace(".", "-")


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "schedules.list",
        ListSchedules,
        lambda ops, r: ops.queries.list_scheduled_jobs(r.status, r.selector, r.limit, r.cursor),
        "scheduled jobs, sorted by id, by cursor",
    ),
    Endpoint(
        "schedules.get",
        ScheduleRef,
        lambda ops, r: ops.queries.scheduled_job(r.scheduled_job_id),
        "one scheduled job",
    ),
    Endpoint(
        "schedules.describe",
        DescribeSchedule,
        lambda ops, r: ops.queries.scheduled_job_detail(
            r.scheduled_job_id, r.include_runs, r.limit
        ),
        "a scheduled job and its newest runs",
    ),
    Endpoint(
        "schedules.preview",
        PreviewSchedule,
        lambda ops, r: ops.specs.preview(r.scheduled_job_id, r.count, r.after),
        "the next fire times, and the schedule in words",
    ),
    Endpoint(
        "schedules.backfill",
        Backfill,
        lambda ops, r: ops.commands.backfill(r.scheduled_job_id, r.start, r.end, r.dry_run),
        "run the past slots in a range that never ran (through a ticker)",
    ),
    Endpoint(
        "schedules.stats",
        ScheduleStats,
        lambda ops, r: ops.queries.job_stats(r.scheduled_job_id, r.hours),
        "run statistics of a scheduled job",
    ),
    Endpoint(
        "schedules.pause",
        PauseSchedule,
        lambda ops, r: ops.specs.pause(r.scheduled_job_id, r.reason),
        "pause an active scheduled job",
    ),
    Endpoint(
        "schedules.resume",
        ScheduleRef,
        lambda ops, r: ops.specs.resume(r.scheduled_job_id),
        "resume a paused scheduled job",
    ),
    Endpoint(
        "schedules.delete",
        ScheduleRef,
        lambda ops, r: ops.specs.delete(r.scheduled_job_id),
        "delete a scheduled job (its document and runs are kept)",
    ),
    Endpoint(
        "schedules.bulk.pause",
        BulkControl,
        lambda ops, r: ops.specs.bulk("pause", r.ids, r.selector, r.reason),
        "pause many, by ids or label selector",
    ),
    Endpoint(
        "schedules.bulk.resume",
        BulkControl,
        lambda ops, r: ops.specs.bulk("resume", r.ids, r.selector),
        "resume many, by ids or label selector",
    ),
    Endpoint(
        "schedules.bulk.delete",
        BulkControl,
        lambda ops, r: ops.specs.bulk("delete", r.ids, r.selector),
        "delete many, by ids or label selector",
    ),
    Endpoint(
        "schedules.create",
        CreateSchedule,
        lambda ops, r: ops.specs.create(r.spec, r.unchecked),
        "create a scheduled job (fails if its id exists)",
    ),
    Endpoint(
        "schedules.replace",
        ReplaceSchedule,
        lambda ops, r: ops.specs.replace(r.scheduled_job_id, r.spec, r.unchecked),
        "create or replace a scheduled job",
    ),
    Endpoint(
        "jobs.list",
        ListJobs,
        lambda ops, r: ops.queries.executions(
            r.scheduled_job_id, r.status, r.trigger, r.since, r.until, r.limit, r.cursor
        ),
        "jobs (executions), newest first, by cursor",
    ),
    Endpoint("jobs.get", JobRef, lambda ops, r: ops.queries.execution(r.job_id), "one job"),
    Endpoint(
        "jobs.cancel",
        CancelJob,
        lambda ops, r: ops.commands.cancel(r.job_id, r.reason, r.by),
        "cancel a running or queued job",
    ),
    Endpoint(
        "jobs.retry",
        RetryJob,
        lambda ops, r: ops.commands.retry(r.job_id, r.priority),
        "run a failed or cancelled job again, as a new job linked to it",
    ),
    Endpoint(
        "trigger",
        TriggerRequest,
        lambda ops, r: ops.commands.trigger(r),
        "run a scheduled job now, or an ad-hoc scraper run",
    ),
    Endpoint(
        "status",
        Nothing,
        lambda ops, r: ops.status.status(),
        "leader, lane lag, runners, scrapers",
    ),
    Endpoint(
        "metrics",
        Nothing,
        lambda ops, r: ops.status.metrics(),
        "system-wide run statistics and counts",
    ),
)


class MicroFace:
    """The endpoints in `ENDPOINTS`, served on one NATS connection; counts every request by
    endpoint and outcome (`ok` or the error code)."""

    def __init__(self, operations: Operations, registry: CollectorRegistry) -> None:
        self._operations = operations
        self._service: Service | None = None
        self._requests = Counter(
            "natscron_api_nats_requests_total",
            "NATS API requests answered, by endpoint and outcome (ok or the error code)",
            ["endpoint", "outcome"],
            registry=registry,
        )

    async def start(self, client: Client) -> None:
        self._service = await add_service(
            client,
            name=SERVICE_NAME,
            version=SERVICE_VERSION,
            description="natscron: schedules, jobs, triggers, statistics",
        )
        group = self._service.add_group(name=names.API_PREFIX)
        for endpoint in ENDPOINTS:
            await group.add_endpoint(
                name=endpoint.name,
                subject=endpoint.subject,
                handler=self._handler(endpoint),
                metadata={"description": endpoint.description},
            )

    async def stop(self) -> None:
        if self._service is not None:
            await self._service.stop()
            self._service = None

    def _handler(self, endpoint: Endpoint) -> Callable[[Request], Awaitable[None]]:
        async def handle(request: Request) -> None:
            outcome = "ok"
            try:
                answer = await self._answer(endpoint, request.data)
            except NatscronError as exc:
                outcome = exc.code
                await _respond_error(request, exc.code, exc.detail)
            else:
                await request.respond(answer)
            self._requests.labels(endpoint.subject, outcome).inc()

        return handle

    async def _answer(self, endpoint: Endpoint, data: bytes) -> bytes:
        body = _parse(data)
        try:
            parsed = endpoint.request.model_validate(body)
        except ValidationError as exc:
            raise ApiError("invalid_request", problems_sentence(exc.errors())) from None
        try:
            reply = await endpoint.call(self._operations, parsed)
        except NatscronError:
            raise
        except UNAVAILABLE as exc:
            backend = "MongoDB" if isinstance(exc, ConnectionFailure) else "NATS"
            log.warning("%s: %s unavailable: %r", endpoint.subject, backend, exc)
            raise ApiError("unavailable", f"{backend} is unavailable; retry later") from None
        except Exception as exc:
            log.exception("%s failed", endpoint.subject)
            raise ApiError(
                "internal_error", f"internal error ({type(exc).__name__}); see the API's log"
            ) from None
        return reply.model_dump_json().encode()


def _parse(data: bytes) -> Any:
    if not data.strip():
        return {}
    try:
        return json.loads(data)
    except ValueError:
        raise ApiError("malformed_json", "the request body is not valid JSON") from None


async def _respond_error(request: Request, code: str, message: str) -> None:
    body = ErrorResponse.of(code, message).model_dump_json().encode()
    await request.respond_error(str(http_status(code)), message, data=body)
