"""`natscron jobs [list|get|cancel|retry]` and `natscron trigger`, through the API on NATS
(`natscron.api.jobs.*`, `natscron.api.trigger`). `natscron jobs` alone lists."""

from datetime import datetime
from typing import Annotated, Any

import typer

from natscron.cli import tables
from natscron.cli.api_client import Api, ApiReplyError
from natscron.cli.exits import EXIT_HELP, Exit
from natscron.cli.output import Format, OutputOption
from natscron.cli.query import UNKNOWN_SCHEDULE, ask
from natscron.cli.runtime import fail
from natscron.cli.times import PAST_HELP, parse_time
from natscron_api.requests import (
    BulkCancelJobs,
    CancelJob,
    JobRef,
    ListJobs,
    PreviewSchedule,
    RetryJob,
    ScheduleRef,
)
from natscron_shared.contract.enums import JobStatus, Priority, Trigger
from natscron_shared.contract.messages import TriggerRequest

app = typer.Typer(help=f"Jobs (runs): list, show, cancel, retry. {EXIT_HELP}")

JobIdArgument = Annotated[str, typer.Argument(help="a job (run) id", show_default=False)]
Status = Annotated[JobStatus | None, typer.Option(help="only jobs with this status")]
Schedule = Annotated[
    str | None, typer.Option("--schedule", "--scheduled-job", help="only this scheduled job's")
]
TriggerOption = Annotated[Trigger | None, typer.Option(help="only jobs started this way")]
Since = Annotated[
    datetime | None,
    typer.Option(parser=parse_time, metavar="TIME", help=f"created at or after; {PAST_HELP}"),
]
Until = Annotated[
    datetime | None,
    typer.Option(parser=parse_time, metavar="TIME", help=f"created before; {PAST_HELP}"),
]
Limit = Annotated[int, typer.Option(min=1, max=1000, help="at most this many, newest first")]
Cursor = Annotated[
    str | None, typer.Option(help="continue after the page that printed this cursor")
]
PriorityOption = Annotated[Priority, typer.Option(help="the lane: immediate runs before normal")]
BY = "natscron cli"
"""Kept as a cancelled job's `cancelled_by`."""


def _list(
    status: JobStatus | None,
    schedule: str | None,
    trigger: Trigger | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    cursor: str | None,
    fmt: Format,
) -> None:
    request = ListJobs(
        scheduled_job_id=schedule,
        status=status,
        trigger=trigger,
        since=since,
        until=until,
        limit=limit,
        cursor=cursor,
    )

    async def schedule_exists(client: Api, reply: Any) -> None:
        """No runs of a scheduled job that does not exist is a mistyped id: say so (exit 3)
        rather than print an empty table. It exists if MongoDB has it (deleted ones keep
        their history) or KV does (one applied a moment ago)."""
        if schedule is None or reply.get("executions"):
            return
        try:
            await client.ask("schedules.get", ScheduleRef(scheduled_job_id=schedule))
        except ApiReplyError as exc:
            if exc.code != UNKNOWN_SCHEDULE:
                raise
            await client.ask("schedules.preview", PreviewSchedule(scheduled_job_id=schedule))

    ask("jobs.list", request, fmt, tables.jobs, schedule_exists)


@app.callback(invoke_without_command=True)
def jobs(
    context: typer.Context,
    status: Status = None,
    schedule: Schedule = None,
    trigger: TriggerOption = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 20,
    cursor: Cursor = None,
    output: OutputOption = Format.TABLE,
) -> None:
    """Jobs (runs), newest first; the same as `natscron jobs list`."""
    if context.invoked_subcommand is None:
        _list(status, schedule, trigger, since, until, limit, cursor, output)


@app.command("list")
def list_jobs(
    status: Status = None,
    schedule: Schedule = None,
    trigger: TriggerOption = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 20,
    cursor: Cursor = None,
    output: OutputOption = Format.TABLE,
) -> None:
    """Jobs (runs), newest first, from MongoDB as the recorder writes them."""
    _list(status, schedule, trigger, since, until, limit, cursor, output)


@app.command()
def get(job_id: JobIdArgument, output: OutputOption = Format.TABLE) -> None:
    """One job (run): its status, times, counts and error."""
    ask("jobs.get", JobRef(job_id=job_id), output, tables.job)


@app.command()
def cancel(
    job_ids: Annotated[
        list[str] | None,
        typer.Argument(help="job (run) ids; or use --selector", show_default=False),
    ] = None,
    selector: Annotated[
        str | None,
        typer.Option(
            help="every job not yet final of the scheduled jobs whose labels match:"
            " key=value[,key=value]"
        ),
    ] = None,
    reason: Annotated[str | None, typer.Option(help="a note kept with each job")] = None,
    output: OutputOption = Format.TABLE,
) -> None:
    """Cancel jobs: a running one stops within a second; a queued one never starts. One id:
    an unknown job is an error (exit 3). Several ids or a selector (at most 1000 jobs): each
    gets its own outcome."""
    ids = job_ids or []
    if bool(ids) == (selector is not None):
        raise fail("natscron: cancel: give job ids or --selector, not both", Exit.USAGE)
    if len(ids) == 1:
        request = CancelJob(job_id=ids[0], reason=reason, by=BY)
        ask("jobs.cancel", request, output, tables.cancelled)
        return
    many = BulkCancelJobs(ids=ids or None, selector=selector, reason=reason, by=BY)
    ask("jobs.bulk.cancel", many, output, tables.bulk_cancelled)


@app.command()
def retry(
    job_id: JobIdArgument,
    priority: PriorityOption = Priority.IMMEDIATE,
    output: OutputOption = Format.TABLE,
) -> None:
    """Run a failed or cancelled job again, as a new job linked to it."""
    ask("jobs.retry", RetryJob(job_id=job_id, priority=priority), output, tables.started)


def trigger(
    scheduled_job_id: Annotated[
        str, typer.Argument(help="the scheduled job to run now", show_default=False)
    ],
    priority: PriorityOption = Priority.IMMEDIATE,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="run it even though it is paused (it stays paused); else refused"
        ),
    ] = False,
    output: OutputOption = Format.TABLE,
) -> None:
    """Run a scheduled job now, through any ticker; prints the new job's id first. A paused
    schedule is refused (exit 4) unless --force."""
    request = TriggerRequest(scheduled_job_id=scheduled_job_id, priority=priority, force=force)
    ask("trigger", request, output, tables.started)
