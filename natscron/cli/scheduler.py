"""`natscron stats [SCHEDULE_ID]` and `natscron status`, through the API on NATS."""

from typing import Annotated

import typer

from natscron.cli import tables
from natscron.cli.output import Format, OutputOption
from natscron.cli.query import ask
from natscron_api.requests import ScheduleStats


def stats(
    scheduled_job_id: Annotated[
        str | None,
        typer.Argument(help="a scheduled job; without one, the whole system", show_default=False),
    ] = None,
    hours: Annotated[
        int, typer.Option(min=1, max=24 * 14, help="recent UTC hours (with a scheduled job)")
    ] = 24,
    output: OutputOption = Format.TABLE,
) -> None:
    """Run statistics: success rate, mean and p95 duration, items; all time, the last hour,
    day, week and month (and with a scheduled job, the hours asked for)."""
    if scheduled_job_id is None:
        ask("metrics", None, output, tables.metrics)
    else:
        request = ScheduleStats(scheduled_job_id=scheduled_job_id, hours=hours)
        ask("schedules.stats", request, output, tables.job_stats)


def status(output: OutputOption = Format.TABLE) -> None:
    """The scheduler now: the leading ticker, schedules loaded, lag of each consumer, runners."""
    ask("status", None, output, tables.status)
