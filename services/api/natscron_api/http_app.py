"""The HTTP face: FastAPI routes over the API's `Operations`, bearer-token scopes, one error
shape.

Every answer that is not a success is `{"error": {"code", "message"}}` (`ErrorResponse`):
malformed JSON 400, no or a bad token 401, a missing scope 403, an unknown id or route 404,
a conflict with the current state 409, a body too large 413, anything that does not
validate 422, NATS or MongoDB unavailable 503. `/healthz`, `/readyz`, `/health`, `/metrics`,
`/docs` (Swagger UI, served from the package: `docs_page.py`), `/openapi.json` and the
console's files (`/ui`, `console.py`) are open; every other route needs `read` or `write`
(`/api/v1/whoami` any valid token). Browser pages of the origins in
`NATSCRON_API_CORS_ORIGINS` may call it (`cors.py`).
"""

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from pymongo.errors import ConnectionFailure
from starlette.exceptions import HTTPException as StarletteHTTPException

from natscron_api.auth import Authenticator, Forbidden, Principal, Scope, Unauthorized
from natscron_api.bulk_cancel import JobCancels
from natscron_api.commands import Commands
from natscron_api.console import serve_console
from natscron_api.cors import allow_origins
from natscron_api.crawler_jobs import CrawlerJobs
from natscron_api.docs_page import serve_docs
from natscron_api.explain import Explain
from natscron_api.job_lookup import JobLookup
from natscron_api.operations import Operations
from natscron_api.queries import Queries
from natscron_api.requests import (
    MAX_BULK_CANCEL,
    MAX_PAGE,
    BackfillRange,
    BulkCancel,
    CursorText,
    Offset,
    SearchText,
    StoredLabelSelector,
    UtcDatetime,
)
from natscron_api.run_feed import RunFeed, server_sent_events
from natscron_api.screenshots import Screenshots
from natscron_api.specs import Specs
from natscron_api.status import Status
from natscron_api.timeline import Explanation
from natscron_api.views import (
    BulkCancelResult,
    BulkControl,
    BulkControlResult,
    ControlResult,
    CrawlerJobList,
    CrawlerJobStatus,
    DaemonStatus,
    ErrorResponse,
    ExecutionList,
    ExecutionView,
    Health,
    JobStats,
    Note,
    Preview,
    ScheduledJobDetail,
    ScheduledJobList,
    SchedulerMetrics,
    SchedulerStatus,
    SpecView,
    SpecWritten,
    Whoami,
)
from natscron_shared.contract.backfill import BackfillReply
from natscron_shared.contract.cancel import CancelReply
from natscron_shared.contract.enums import JobStatus, Priority, ScheduledJobStatus, Trigger
from natscron_shared.contract.errors import NatscronError, problems_sentence, status_of
from natscron_shared.contract.messages import TriggerReply, TriggerRequest
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.nats.connection import TRANSIENT_NATS_ERRORS

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
"""A spec is at most 1 MiB in KV; nothing the API takes is bigger."""
ID_PATTERN = r"^[A-Za-z0-9_-]{1,100}$"
JOB_ID_PATTERN = r"^[A-Za-z0-9_-]{1,255}$"
DESCRIPTION = """\
The HTTP face of natscron: scheduled jobs and their runs (read from MongoDB, as the recorder
writes them), schedule specs and pause/resume (written to KV `scheduled_jobs`, as
`natscron apply` does), triggers, retries and cancels (through `jobs.trigger` and
`jobs.cancel`), statistics and the scheduler's live status.

Send `Authorization: Bearer <token>`: `read` for GET, `write` for everything else (`write`
includes `read`). Errors are `{"error": {"code", "message"}}`.
"""

Problems = Callable[[], list[str]]

BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="a JWT (scopes in its `scope` claim) or a static token; scopes `read`, `write`",
)


def _error(status: int, description: str) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorResponse, "description": description}}


AUTH_ERRORS = {
    **_error(401, "no token, or one this API does not accept"),
    **_error(403, "the token lacks the scope"),
    **_error(422, "a parameter or the body does not validate"),
}
NOT_FOUND = _error(404, "no such scheduled job or job")
CONFLICT = _error(409, "the current state does not allow it")
UNAVAILABLE = _error(503, "NATS, MongoDB or the services behind them are unavailable")
BAD_JSON = _error(400, "the body is not JSON")
TAGS = [
    {
        "name": "scheduled jobs",
        "description": "Scheduled jobs and their statistics, as the recorder stores them.",
    },
    {
        "name": "schedule specs",
        "description": "The specs in KV `scheduled_jobs`: written, paused, resumed, deleted,"
        " previewed.",
    },
    {
        "name": "runs",
        "description": "Jobs (executions): triggered, retried and backfilled through a ticker,"
        " cancelled through a runner, and their records.",
    },
    {"name": "scheduler", "description": "The scheduler as a whole: leader, lag, counts."},
    {"name": "console", "description": "What the web console at `/ui` asks of the API."},
    {"name": "operations", "description": "Liveness, readiness and metrics, open to all."},
]
"""The route groups, in the order `/docs` shows them. The paths are the ones the seeds'
frontends call: `/scheduled-jobs` and `/scrape/trigger` (seed 001), `/api/v1/...` (seed 004)."""


# --- dependencies --------------------------------------------------------------------------


def _operations(request: Request) -> Operations:
    operations: Operations = request.app.state.operations
    return operations


def _queries(request: Request) -> Queries:
    return _operations(request).queries


def _jobs(request: Request) -> JobLookup:
    return _operations(request).jobs


def _screenshots(request: Request) -> Screenshots:
    return _operations(request).screenshots


def _explain(request: Request) -> Explain:
    return _operations(request).explain


def _specs(request: Request) -> Specs:
    return _operations(request).specs


def _commands(request: Request) -> Commands:
    return _operations(request).commands


def _status(request: Request) -> Status:
    return _operations(request).status


def _cancels(request: Request) -> JobCancels:
    return _operations(request).cancels


def _crawler_jobs(request: Request) -> CrawlerJobs:
    return _operations(request).crawler_jobs


def _run_feed(request: Request) -> RunFeed:
    return _operations(request).run_feed


def _caller(scope: Scope | None) -> Callable[..., Awaitable[Principal]]:
    """The caller, who must hold `scope` (None: any valid token)."""

    async def caller(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    ) -> Principal:
        authenticator: Authenticator = request.app.state.auth
        principal = authenticator.authenticate(credentials.credentials if credentials else None)
        if scope is not None and scope not in principal.scopes:
            raise Forbidden(scope)
        return principal

    return caller


QueriesDep = Annotated[Queries, Depends(_queries)]
JobsDep = Annotated[JobLookup, Depends(_jobs)]
ScreenshotsDep = Annotated[Screenshots, Depends(_screenshots)]
SpecsDep = Annotated[Specs, Depends(_specs)]
ExplainDep = Annotated[Explain, Depends(_explain)]
CommandsDep = Annotated[Commands, Depends(_commands)]
StatusDep = Annotated[Status, Depends(_status)]
CancelsDep = Annotated[JobCancels, Depends(_cancels)]
CrawlerJobsDep = Annotated[CrawlerJobs, Depends(_crawler_jobs)]
RunFeedDep = Annotated[RunFeed, Depends(_run_feed)]
Caller = Annotated[Principal, Depends(_caller(None))]
Reader = Annotated[Principal, Depends(_caller(Scope.READ))]
Writer = Annotated[Principal, Depends(_caller(Scope.WRITE))]
ScheduledJobId = Annotated[str, Path(pattern=ID_PATTERN, description="a scheduled job's id")]
JobId = Annotated[str, Path(pattern=JOB_ID_PATTERN, description="a job (execution) id")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="at most this many")]
Cursor = Annotated[CursorText | None, Query()]
Skip = Annotated[Offset, Query()]
Since = Annotated[UtcDatetime | None, Query(description="created at or after (UTC if no offset)")]
Until = Annotated[UtcDatetime | None, Query(description="created before (UTC if no offset)")]
Unchecked = Annotated[
    bool,
    Query(description="skip the check of scraper and params against what runners advertise"),
]


# --- scheduled jobs, as the recorder stores them -------------------------------------------

scheduled_jobs = APIRouter(tags=["scheduled jobs"])


@scheduled_jobs.get(
    "/scheduled-jobs",
    response_model=ScheduledJobList,
    responses={**AUTH_ERRORS, **UNAVAILABLE},
    summary="List scheduled jobs",
)
async def list_scheduled_jobs(
    queries: QueriesDep,
    _: Reader,
    status: ScheduledJobStatus | None = None,
    selector: Annotated[StoredLabelSelector | None, Query()] = None,
    search: Annotated[SearchText | None, Query()] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    count: Annotated[
        bool,
        Query(description="false: leave `total` null (counting reads every matching document)"),
    ] = True,
) -> ScheduledJobList:
    return await queries.list_scheduled_jobs(status, selector, limit, cursor, search, count)


@scheduled_jobs.get(
    "/scheduled-jobs/{scheduled_job_id}",
    response_model=ScheduledJobDetail,
    responses={**AUTH_ERRORS, **NOT_FOUND, **UNAVAILABLE},
    summary="A scheduled job and its runs, newest first",
)
async def get_scheduled_job(
    queries: QueriesDep,
    _: Reader,
    scheduled_job_id: ScheduledJobId,
    include_runs: bool = True,
    limit: Limit = 50,
) -> ScheduledJobDetail:
    return await queries.scheduled_job_detail(scheduled_job_id, include_runs, limit)


@scheduled_jobs.get(
    "/api/v1/jobs/{scheduled_job_id}/stats",
    response_model=JobStats,
    responses={**AUTH_ERRORS, **NOT_FOUND, **UNAVAILABLE},
    summary="Run statistics of a scheduled job: all time and by hour",
)
async def job_stats(
    queries: QueriesDep,
    _: Reader,
    scheduled_job_id: ScheduledJobId,
    hours: Annotated[int, Query(ge=1, le=24 * 14, description="recent UTC hours")] = 24,
) -> JobStats:
    return await queries.job_stats(scheduled_job_id, hours)


@scheduled_jobs.get(
    "/api/v1/jobs",
    response_model=CrawlerJobList,
    responses={**AUTH_ERRORS, **UNAVAILABLE},
    summary="Scheduled jobs as seed 004 lists its jobs, with its states and pages",
)
async def crawler_jobs(
    listing: CrawlerJobsDep,
    _: Reader,
    status: Annotated[
        CrawlerJobStatus | None, Query(description="seed 004's job state; running: a run runs")
    ] = None,
    limit: Limit = 50,
    offset: Skip = 0,
) -> CrawlerJobList:
    return await listing.list(status, limit, offset)


@scheduled_jobs.get(
    "/scheduled-jobs/{scheduled_job_id}/explain",
    response_model=Explanation,
    responses={**AUTH_ERRORS, **NOT_FOUND, **UNAVAILABLE},
    summary="Why each slot in a range fired, moved, merged or did not run",
)
async def explain(
    explain: ExplainDep,
    _: Reader,
    scheduled_job_id: ScheduledJobId,
    start: Annotated[
        UtcDatetime | None,
        Query(
            alias="from",
            description=(
                "the first nominal instant, included (UTC if no offset); default a day before to"
            ),
        ),
    ] = None,
    end: Annotated[
        UtcDatetime | None,
        Query(alias="to", description="the range's end, excluded (UTC if no offset); default now"),
    ] = None,
) -> Explanation:
    return await explain.explain(scheduled_job_id, start, end)


# --- schedule specs, in KV scheduled_jobs --------------------------------------------------

schedule_specs = APIRouter(tags=["schedule specs"])


@schedule_specs.post(
    "/scheduled-jobs",
    status_code=201,
    response_model=SpecWritten,
    responses={**AUTH_ERRORS, **BAD_JSON, **CONFLICT, **UNAVAILABLE},
    summary="Create a scheduled job (fails if its id exists)",
)
async def create_schedule(
    specs: SpecsDep, _: Writer, spec: ScheduledJob, unchecked: Unchecked = False
) -> SpecWritten:
    return await specs.create(spec, unchecked)


@schedule_specs.put(
    "/scheduled-jobs/{scheduled_job_id}",
    response_model=SpecWritten,
    responses={
        201: {"model": SpecWritten, "description": "created"},
        **AUTH_ERRORS,
        **BAD_JSON,
        **CONFLICT,
        **UNAVAILABLE,
    },
    summary="Create or replace a scheduled job",
)
async def replace_schedule(
    specs: SpecsDep,
    _: Writer,
    scheduled_job_id: ScheduledJobId,
    spec: ScheduledJob,
    response: Response,
    unchecked: Unchecked = False,
) -> SpecWritten:
    written = await specs.replace(scheduled_job_id, spec, unchecked)
    response.status_code = 201 if written.created else 200
    return written


@schedule_specs.delete(
    "/scheduled-jobs/{scheduled_job_id}",
    response_model=ControlResult,
    responses={**AUTH_ERRORS, **NOT_FOUND, **UNAVAILABLE},
    summary="Delete a scheduled job (its document and runs are kept, inactive)",
)
async def delete_schedule(
    specs: SpecsDep, _: Writer, scheduled_job_id: ScheduledJobId
) -> ControlResult:
    return await specs.delete(scheduled_job_id)


@schedule_specs.post(
    "/api/v1/jobs/{scheduled_job_id}/pause",
    response_model=ControlResult,
    responses={**AUTH_ERRORS, **BAD_JSON, **NOT_FOUND, **CONFLICT, **UNAVAILABLE},
    summary="Pause an active scheduled job",
)
async def pause(
    specs: SpecsDep,
    _: Writer,
    scheduled_job_id: ScheduledJobId,
    note: Annotated[Note | None, Body()] = None,
) -> ControlResult:
    return await specs.pause(scheduled_job_id, note.reason if note else None)


@schedule_specs.post(
    "/api/v1/jobs/{scheduled_job_id}/resume",
    response_model=ControlResult,
    responses={**AUTH_ERRORS, **NOT_FOUND, **CONFLICT, **UNAVAILABLE},
    summary="Resume a paused scheduled job",
)
async def resume(specs: SpecsDep, _: Writer, scheduled_job_id: ScheduledJobId) -> ControlResult:
    return await specs.resume(scheduled_job_id)


@schedule_specs.post(
    "/scheduled-jobs/pause",
    response_model=BulkControlResult,
    responses={**AUTH_ERRORS, **BAD_JSON, **UNAVAILABLE},
    summary="Pause many scheduled jobs, by ids or label selector",
)
async def bulk_pause(specs: SpecsDep, _: Writer, body: BulkControl) -> BulkControlResult:
    return await specs.bulk("pause", body.ids, body.selector, body.reason)


@schedule_specs.post(
    "/scheduled-jobs/resume",
    response_model=BulkControlResult,
    responses={**AUTH_ERRORS, **BAD_JSON, **UNAVAILABLE},
    summary="Resume many scheduled jobs, by ids or label selector",
)
async def bulk_resume(specs: SpecsDep, _: Writer, body: BulkControl) -> BulkControlResult:
    return await specs.bulk("resume", body.ids, body.selector)


@schedule_specs.post(
    "/scheduled-jobs/delete",
    response_model=BulkControlResult,
    responses={**AUTH_ERRORS, **BAD_JSON, **UNAVAILABLE},
    summary="Delete many scheduled jobs, by ids or label selector",
)
async def bulk_delete(specs: SpecsDep, _: Writer, body: BulkControl) -> BulkControlResult:
    return await specs.bulk("delete", body.ids, body.selector)


@schedule_specs.get(
    "/scheduled-jobs/{scheduled_job_id}/preview",
    response_model=Preview,
    responses={**AUTH_ERRORS, **NOT_FOUND, **UNAVAILABLE},
    summary="The next fire times, and the schedule in words",
)
async def preview(
    specs: SpecsDep,
    _: Reader,
    scheduled_job_id: ScheduledJobId,
    count: Annotated[int, Query(ge=1, le=100)] = 10,
    after: Annotated[
        UtcDatetime | None, Query(description="from this moment (UTC if no offset); default now")
    ] = None,
) -> Preview:
    return await specs.preview(scheduled_job_id, count, after)


@schedule_specs.get(
    "/scheduled-jobs/{scheduled_job_id}/spec",
    response_model=SpecView,
    responses={**AUTH_ERRORS, **NOT_FOUND, **UNAVAILABLE},
    summary="The spec KV holds now (what the ticker follows), with its revision",
)
async def spec(specs: SpecsDep, _: Reader, scheduled_job_id: ScheduledJobId) -> SpecView:
    return await specs.current(scheduled_job_id)


# --- runs (jobs): started, retried, backfilled, cancelled, listed ---------------------------

runs = APIRouter(tags=["runs"])


@runs.post(
    "/scrape/trigger",
    response_model=TriggerReply,
    responses={**AUTH_ERRORS, **BAD_JSON, **NOT_FOUND, **CONFLICT, **UNAVAILABLE},
    summary="Run a scheduled job now (or an ad-hoc scraper run), through any ticker",
)
async def trigger(commands: CommandsDep, _: Writer, request: TriggerRequest) -> TriggerReply:
    return await commands.trigger(request)


@runs.post(
    "/api/v1/jobs/{job_id}/retry",
    response_model=TriggerReply,
    responses={**AUTH_ERRORS, **NOT_FOUND, **CONFLICT, **UNAVAILABLE},
    summary="Run a failed or cancelled job again, as a new job linked to it",
)
async def retry(
    commands: CommandsDep, _: Writer, job_id: JobId, priority: Priority = Priority.IMMEDIATE
) -> TriggerReply:
    return await commands.retry(job_id, priority)


@runs.post(
    "/scheduled-jobs/{scheduled_job_id}/backfill",
    response_model=BackfillReply,
    responses={**AUTH_ERRORS, **BAD_JSON, **NOT_FOUND, **CONFLICT, **UNAVAILABLE},
    summary="Run the past slots in a range that never ran, through any ticker",
)
async def backfill(
    commands: CommandsDep, _: Writer, scheduled_job_id: ScheduledJobId, body: BackfillRange
) -> BackfillReply:
    return await commands.backfill(scheduled_job_id, body.start, body.end, body.dry_run)


@runs.post(
    "/api/v1/jobs/{job_id}/cancel",
    response_model=CancelReply,
    responses={**AUTH_ERRORS, **BAD_JSON, **NOT_FOUND, **UNAVAILABLE},
    summary="Cancel a running or queued job (an execution)",
)
async def cancel(
    commands: CommandsDep,
    caller: Writer,
    job_id: JobId,
    note: Annotated[Note | None, Body()] = None,
) -> CancelReply:
    return await commands.cancel(job_id, note.reason if note else None, f"api: {caller.name}")


@runs.post(
    "/api/v1/jobs/cancel",
    response_model=BulkCancelResult,
    responses={**AUTH_ERRORS, **BAD_JSON, **CONFLICT, **UNAVAILABLE},
    summary="Cancel many jobs: by ids, or every job not yet final of the scheduled jobs a label"
    f" selector picks (at most {MAX_BULK_CANCEL})",
)
async def bulk_cancel(cancels: CancelsDep, caller: Writer, body: BulkCancel) -> BulkCancelResult:
    return await cancels.cancel(body.ids, body.selector, body.reason, f"api: {caller.name}")


@runs.get(
    "/api/v1/jobs/{scheduled_job_id}/executions",
    response_model=ExecutionList,
    responses={**AUTH_ERRORS, **NOT_FOUND, **UNAVAILABLE},
    summary="A scheduled job's runs, newest first, by cursor",
)
async def scheduled_job_executions(
    queries: QueriesDep,
    _: Reader,
    scheduled_job_id: ScheduledJobId,
    status: JobStatus | None = None,
    trigger: Trigger | None = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    offset: Skip = 0,
) -> ExecutionList:
    return await queries.scheduled_job_executions(
        scheduled_job_id,
        status=status,
        trigger=trigger,
        since=since,
        until=until,
        limit=limit,
        cursor=cursor,
        offset=offset,
    )


@runs.get(
    "/api/v1/executions",
    response_model=ExecutionList,
    responses={**AUTH_ERRORS, **UNAVAILABLE},
    summary="Runs of every scheduled job (and ad-hoc ones), newest first, by cursor",
)
async def executions(
    queries: QueriesDep,
    _: Reader,
    scheduled_job_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    status: JobStatus | None = None,
    trigger: Trigger | None = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    offset: Skip = 0,
) -> ExecutionList:
    return await queries.executions(
        scheduled_job_id, status, trigger, since, until, limit, cursor, offset
    )


@runs.get(
    "/api/v1/executions/{job_id}",
    response_model=ExecutionView,
    responses={**AUTH_ERRORS, **NOT_FOUND, **UNAVAILABLE},
    summary="One job (execution)",
    description="MongoDB's record of the job; until the recorder has written it, the job's"
    ' newest event in JetStream, marked `"source": "events"`.',
)
async def execution(jobs: JobsDep, _: Reader, job_id: JobId) -> ExecutionView:
    return await jobs.get(job_id)


@runs.get(
    "/api/v1/executions/{job_id}/screenshot",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}}, "description": "the JPEG"},
        **AUTH_ERRORS,
        **_error(404, "no such job, or it kept no screenshot"),
        **UNAVAILABLE,
    },
    summary="The screenshot a failed browser scrape kept (the newest attempt's, by default)",
)
async def execution_screenshot(
    screenshots: ScreenshotsDep,
    _: Reader,
    job_id: JobId,
    attempt: Annotated[int | None, Query(ge=1, le=1000, description="that attempt's")] = None,
) -> Response:
    shot = await screenshots.of(job_id, attempt)
    return Response(
        shot.jpeg,
        media_type="image/jpeg",
        headers={"X-Natscron-Attempt": str(shot.attempt), "Cache-Control": "no-store"},
    )


@runs.get(
    "/api/v1/events/runs",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "server-sent events: `ready` once listening, then `runs` (a JSON"
            " array of run changes, at most one per job, every 250 ms at most) and"
            " `overrun` if the client fell too far behind (reload, then listen again)",
        },
        **AUTH_ERRORS,
        **UNAVAILABLE,
    },
    summary="Runs' status changes as they happen (stream EVENTS), as server-sent events",
)
async def run_events(
    feed: RunFeedDep,
    _: Reader,
    scheduled_job_id: Annotated[
        str | None, Query(pattern=ID_PATTERN, description="only this scheduled job's runs")
    ] = None,
) -> StreamingResponse:
    async def events() -> AsyncIterator[str]:
        async with feed.listen(scheduled_job_id) as listener:
            async for event in server_sent_events(listener):
                yield event

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


# --- the scheduler as a whole --------------------------------------------------------------

scheduler = APIRouter(prefix="/api/v1/scheduler", tags=["scheduler"])


@scheduler.get(
    "/metrics",
    response_model=SchedulerMetrics,
    responses={**AUTH_ERRORS, **UNAVAILABLE},
    summary="System-wide run statistics and counts",
)
async def scheduler_metrics(status: StatusDep, _: Reader) -> SchedulerMetrics:
    return await status.metrics()


@scheduler.get(
    "/status",
    response_model=SchedulerStatus,
    responses={**AUTH_ERRORS, **UNAVAILABLE},
    summary="Which ticker leads, schedules loaded, lag of each runner lane",
)
async def scheduler_status(status: StatusDep, _: Reader) -> SchedulerStatus:
    return await status.status()


daemon = APIRouter(tags=["scheduler"])


@daemon.get(
    "/api/scraping-schedules/status/daemon",
    response_model=DaemonStatus,
    responses={**AUTH_ERRORS, **UNAVAILABLE},
    summary="Seed 002's daemon status: whether the leading ticker runs, checks and fires",
)
async def daemon_status(status: StatusDep, _: Reader) -> DaemonStatus:
    return await status.daemon()


# --- the console ---------------------------------------------------------------------------

console = APIRouter(tags=["console"])


@console.get(
    "/api/v1/whoami",
    response_model=Whoami,
    responses={**_error(401, "no token, or one this API does not accept"), **UNAVAILABLE},
    summary="Who the token is and what it may do (any valid token)",
)
async def whoami(request: Request, caller: Caller) -> Whoami:
    authenticator: Authenticator = request.app.state.auth
    return Whoami(
        name=caller.name,
        scopes=sorted(scope.value for scope in caller.scopes),
        auth="none" if authenticator.open else "bearer",
        grafana_url=request.app.state.grafana_url,
    )


# --- probes, open to all -------------------------------------------------------------------

probes = APIRouter(tags=["operations"])


@probes.get("/healthz", response_class=PlainTextResponse, summary="Liveness (open)")
async def healthz(request: Request) -> PlainTextResponse:
    return _verdict(request.app.state.health(), "ok")


@probes.get("/readyz", response_class=PlainTextResponse, summary="Readiness (open)")
async def readyz(request: Request) -> PlainTextResponse:
    return _verdict(request.app.state.readiness(), "ready")


@probes.get(
    "/health",
    response_model=Health,
    responses=_error(503, "not ready: the message names what is missing"),
    summary="Seed 004's health: ready to answer (open)",
)
async def health(request: Request) -> Response:
    problems: list[str] = request.app.state.readiness()
    if problems:
        return error_response("unavailable", "; ".join(problems), 503)
    return JSONResponse(Health(status="ok").model_dump())


@probes.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics (open)")
async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.registry), media_type=CONTENT_TYPE_LATEST)


def _verdict(problems: list[str], fine: str) -> PlainTextResponse:
    if not problems:
        return PlainTextResponse(f"{fine}\n")
    return PlainTextResponse("".join(f"{problem}\n" for problem in problems), status_code=503)


# --- the app -------------------------------------------------------------------------------

ROUTERS = (scheduled_jobs, schedule_specs, runs, scheduler, daemon, console, probes)


def create_app(
    operations: Operations,
    auth: Authenticator,
    health: Problems,
    readiness: Problems,
    registry: CollectorRegistry,
    cors_origins: Sequence[str] = (),
    grafana_url: str | None = None,
) -> FastAPI:
    """`cors_origins` (none: no CORS headers) wraps every answer, errors included;
    `grafana_url` is what the console links its dashboards to."""
    app = FastAPI(
        title="natscron API",
        version="0.1.0",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        docs_url=None,
        redoc_url=None,
    )
    serve_docs(app, app.openapi_url or "/openapi.json")
    app.state.operations = operations
    app.state.auth = auth
    app.state.health = health
    app.state.readiness = readiness
    app.state.registry = registry
    app.state.grafana_url = grafana_url
    for router in ROUTERS:
        app.include_router(router)
    serve_console(app)
    _handle_errors(app)
    _measure(app, registry)
    allow_origins(app, cors_origins)
    return app


def error_response(
    code: str, message: str, status: int | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        ErrorResponse.of(code, message).model_dump(),
        status_code=status or status_of(code),
        headers=headers,
    )


def _handle_errors(app: FastAPI) -> None:
    async def natscron_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, NatscronError)
        headers = None
        if isinstance(exc, Unauthorized):
            challenge = 'Bearer realm="natscron"'
            if exc.invalid_token:
                challenge += ', error="invalid_token"'
            headers = {"WWW-Authenticate": challenge}
        elif isinstance(exc, Forbidden):
            headers = {
                "WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{exc.scope}"'
            }
        return error_response(exc.code, exc.detail, headers=headers)

    async def invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = list(exc.errors())
        if any(error.get("type") == "json_invalid" for error in errors):
            return error_response("malformed_json", "the body is not valid JSON", 400)
        return error_response("invalid_request", problems_sentence(errors))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404:
            return error_response("not_found", f"no route {request.url.path}", 404)
        if exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
            return error_response("method_not_allowed", message, 405)
        return error_response(f"http_{exc.status_code}", str(exc.detail), exc.status_code)

    async def backend_down(request: Request, exc: Exception) -> Response:
        backend = "MongoDB" if isinstance(exc, ConnectionFailure) else "NATS"
        log.warning("%s %s: %s unavailable: %r", request.method, request.url.path, backend, exc)
        return error_response("unavailable", f"{backend} is unavailable; retry later", 503)

    app.add_exception_handler(NatscronError, natscron_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StarletteHTTPException, http_error)
    for transient in (*TRANSIENT_NATS_ERRORS, ConnectionFailure):
        app.add_exception_handler(transient, backend_down)


def _measure(app: FastAPI, registry: CollectorRegistry) -> None:
    """Counts and times every request by route template; turns anything unexpected into a
    logged 500 in the error shape; refuses bodies over `MAX_BODY_BYTES`."""
    requests = Counter(
        "natscron_api_requests_total",
        "HTTP requests answered, by method, route template and status",
        ["method", "route", "status"],
        registry=registry,
    )
    seconds = Histogram(
        "natscron_api_request_duration_seconds",
        "Time to answer an HTTP request, by route template",
        ["route"],
        registry=registry,
    )

    @app.middleware("http")
    async def measured(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        length = request.headers.get("content-length", "0")
        if not length.isdigit() or int(length) > MAX_BODY_BYTES:
            response: Response = error_response(
                "body_too_large", f"the body is over {MAX_BODY_BYTES} bytes", 413
            )
        else:
            try:
                response = await call_next(request)
            except Exception as exc:
                log.exception("%s %s failed", request.method, request.url.path)
                response = error_response(
                    "internal_error", f"internal error ({type(exc).__name__}); see the API's log"
                )
        route = request.scope.get("route")
        template = getattr(route, "path", "unmatched")
        requests.labels(request.method, template, str(response.status_code)).inc()
        seconds.labels(template).observe(time.perf_counter() - started)
        return response
