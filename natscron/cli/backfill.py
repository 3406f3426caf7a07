"""`natscron backfill SCHEDULE_ID --from T --to T`: run the past slots of a scheduled job
that never ran, through the API on NATS (`natscron.api.schedules.backfill` -> any ticker's
`jobs.backfill`)."""

from datetime import datetime
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.text import Text

from natscron.cli.api_client import reply_as
from natscron.cli.moments import moment
from natscron.cli.output import Format, OutputOption
from natscron.cli.query import ask
from natscron.cli.times import PAST_HELP, parse_time
from natscron_api.requests import Backfill
from natscron_shared.contract.backfill import BackfillReply


def backfill(
    scheduled_job_id: Annotated[
        str, typer.Argument(help="the scheduled job to backfill", show_default=False)
    ],
    start: Annotated[
        datetime,
        typer.Option(
            "--from",
            parser=parse_time,
            metavar="TIME",
            help=f"the first instant, included; {PAST_HELP}",
            show_default=False,
        ),
    ],
    end: Annotated[
        datetime,
        typer.Option(
            "--to",
            parser=parse_time,
            metavar="TIME",
            help=f"the last instant, included, not in the future; {PAST_HELP}",
            show_default=False,
        ),
    ],
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="list the slots, marking those that ran; publish nothing"),
    ] = False,
    output: OutputOption = Format.TABLE,
) -> None:
    """Run the slots of a scheduled job in a past range that have no run yet (each slot's
    job id is the one its normal fire gets, so nothing runs twice)."""
    request = Backfill(scheduled_job_id=scheduled_job_id, start=start, end=end, dry_run=dry_run)
    ask("schedules.backfill", request, output, _table)


def _table(reply: Any) -> Group:
    """Each slot, those that already ran marked: they are not run again."""
    answer = reply_as(BackfillReply, reply)
    ran = set(answer.existing)
    lines = [Text(moment(slot) + ("  already ran" if slot in ran else "")) for slot in answer.slots]
    lines.append(Text(answer.message))
    return Group(*lines)
