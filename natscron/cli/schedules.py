"""`natscron schedules list|get|describe|preview|explain|pause|resume|delete`, through the API
on NATS (`natscron.api.schedules.*`)."""

from datetime import datetime
from typing import Annotated

import typer
from pydantic import BaseModel

from natscron.cli import tables
from natscron.cli.exits import EXIT_HELP, Exit
from natscron.cli.output import Format, OutputOption
from natscron.cli.query import ask
from natscron.cli.runtime import fail
from natscron.cli.times import FUTURE_HELP, PAST_HELP, parse_future_time, parse_time
from natscron_api.requests import (
    DescribeSchedule,
    ExplainSchedule,
    ListSchedules,
    PauseSchedule,
    PreviewSchedule,
    ScheduleRef,
)
from natscron_api.views import BulkControl
from natscron_shared.contract.enums import ScheduledJobStatus

app = typer.Typer(
    help=f"Scheduled jobs: list, show, preview, explain, pause, resume, delete. {EXIT_HELP}",
    no_args_is_help=True,
)

ScheduleId = Annotated[str, typer.Argument(help="the scheduled job's id", show_default=False)]
Limit = Annotated[int, typer.Option(min=1, max=1000, help="at most this many")]
Cursor = Annotated[
    str | None, typer.Option(help="continue after the page that printed this cursor")
]
Ids = Annotated[
    list[str] | None,
    typer.Argument(help="scheduled job ids; or use --selector", show_default=False),
]
Selector = Annotated[
    str | None, typer.Option(help="every scheduled job whose labels match: key=value[,key=value]")
]


@app.command("list")
def list_schedules(
    status: Annotated[
        ScheduledJobStatus | None, typer.Option(help="only those with this status")
    ] = None,
    selector: Selector = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    output: OutputOption = Format.TABLE,
) -> None:
    """Scheduled jobs, sorted by id (from MongoDB, as the recorder mirrors them)."""
    request = ListSchedules(status=status, selector=selector, limit=limit, cursor=cursor)
    ask("schedules.list", request, output, tables.schedules)


@app.command()
def get(scheduled_job_id: ScheduleId, output: OutputOption = Format.TABLE) -> None:
    """One scheduled job: its spec, run history and next run."""
    ask("schedules.get", ScheduleRef(scheduled_job_id=scheduled_job_id), output, tables.schedule)


@app.command()
def describe(
    scheduled_job_id: ScheduleId,
    runs: Annotated[int, typer.Option(min=1, max=1000, help="show this many newest runs")] = 10,
    output: OutputOption = Format.TABLE,
) -> None:
    """A scheduled job and its newest runs."""
    request = DescribeSchedule(scheduled_job_id=scheduled_job_id, limit=runs)
    ask("schedules.describe", request, output, tables.schedule_detail)


@app.command()
def preview(
    scheduled_job_id: ScheduleId,
    count: Annotated[int, typer.Option(min=1, max=100, help="how many fire times")] = 10,
    after: Annotated[
        datetime | None,
        typer.Option(
            parser=parse_future_time,
            metavar="TIME",
            help=f"the fire times after this moment (default now): {FUTURE_HELP}",
        ),
    ] = None,
    output: OutputOption = Format.TABLE,
) -> None:
    """The next fire times of the spec the tickers follow, and the schedule in words."""
    request = PreviewSchedule(scheduled_job_id=scheduled_job_id, count=count, after=after)
    ask("schedules.preview", request, output, tables.preview)


@app.command()
def explain(
    scheduled_job_id: ScheduleId,
    start: Annotated[
        datetime | None,
        typer.Option(
            "--from",
            parser=parse_time,
            metavar="TIME",
            help=f"the first nominal slot, included (default: a day before --to): {PAST_HELP}",
        ),
    ] = None,
    end: Annotated[
        datetime | None,
        typer.Option(
            "--to",
            parser=parse_time,
            metavar="TIME",
            help=f"the range's end, excluded (default now): {PAST_HELP}",
        ),
    ] = None,
    output: OutputOption = Format.TABLE,
) -> None:
    """Why each slot in a range fired, moved, merged or did not run: every nominal slot of the
    cron or interval, in the schedule's zone, with its run or the decision that kept it from
    one (at most 1,000 slots; explained with the current spec)."""
    request = ExplainSchedule(scheduled_job_id=scheduled_job_id, start=start, end=end)
    ask("schedules.explain", request, output, tables.explanation)


def _control(
    action: str, ids: list[str] | None, selector: str | None, reason: str | None, fmt: Format
) -> None:
    """One id: that scheduled job, and not found / not possible are errors (exit 3 / 4).
    Several ids or a selector: each gets its own outcome."""
    ids = ids or []
    if bool(ids) == (selector is not None):
        message = f"natscron: {action}: give scheduled job ids or --selector, not both"
        raise fail(message, Exit.USAGE)
    if len(ids) == 1:
        single: BaseModel = (
            PauseSchedule(scheduled_job_id=ids[0], reason=reason)
            if action == "pause"
            else ScheduleRef(scheduled_job_id=ids[0])
        )
        ask(f"schedules.{action}", single, fmt, tables.control)
        return
    many = BulkControl(ids=ids or None, selector=selector, reason=reason)
    ask(f"schedules.bulk.{action}", many, fmt, tables.bulk)


@app.command()
def pause(
    scheduled_job_ids: Ids = None,
    selector: Selector = None,
    reason: Annotated[str | None, typer.Option(help="a note kept with the pause")] = None,
    output: OutputOption = Format.TABLE,
) -> None:
    """Pause scheduled jobs: no slot fires until they are resumed."""
    _control("pause", scheduled_job_ids, selector, reason, output)


@app.command()
def resume(
    scheduled_job_ids: Ids = None, selector: Selector = None, output: OutputOption = Format.TABLE
) -> None:
    """Resume paused scheduled jobs (the slots of the pause are not replayed)."""
    _control("resume", scheduled_job_ids, selector, None, output)


@app.command()
def delete(
    scheduled_job_ids: Ids = None, selector: Selector = None, output: OutputOption = Format.TABLE
) -> None:
    """Delete scheduled jobs: the spec goes, the history stays in MongoDB."""
    _control("delete", scheduled_job_ids, selector, None, output)
