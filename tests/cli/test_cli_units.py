"""Pieces of the command line that need no server: times, exit statuses, the apply diff,
the tables."""

import io
from datetime import UTC, datetime, timedelta

import pytest
import typer
from rich.console import Console, RenderableType

from natscron.cli import tables
from natscron.cli.api_client import UnexpectedReplyError
from natscron.cli.apply import Action, diff
from natscron.cli.exits import Exit, exit_of
from natscron.cli.times import parse_time
from natscron_api.errors import ApiError
from natscron_api.views import ScheduledJobList, ScheduledJobListItem
from natscron_shared.contract.errors import BadRequestError, NatscronError
from tests.api.api_support import spec


def test_times_are_iso_or_ages() -> None:
    assert parse_time("2026-11-25T10:00") == datetime(2026, 11, 25, 10, tzinfo=UTC)
    offset = parse_time("2026-11-25T10:00+01:00")
    assert offset == datetime(2026, 11, 25, 9, tzinfo=UTC)
    two_hours_ago = datetime.now(UTC) - timedelta(hours=2)
    assert abs(parse_time("2h") - two_hours_ago) < timedelta(seconds=5)
    assert abs(parse_time("7d") - (datetime.now(UTC) - timedelta(days=7))) < timedelta(seconds=5)
    with pytest.raises(typer.BadParameter, match="is not a time"):
        parse_time("last tuesday")


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (ApiError("unknown_scheduled_job", "x"), Exit.NOT_FOUND),
        (ApiError("unknown_job", "x"), Exit.NOT_FOUND),
        (ApiError("already_exists", "x"), Exit.CONFLICT),
        (ApiError("invalid_state", "x"), Exit.CONFLICT),
        (ApiError("invalid_request", "x"), Exit.USAGE),
        (ApiError("too_many_slots", "x"), Exit.USAGE),
        (BadRequestError("x"), Exit.USAGE),
        (ApiError("unavailable", "x"), Exit.FAILURE),
        (NatscronError("x"), Exit.FAILURE),
    ],
)
def test_exit_status_of_each_error(error: NatscronError, status: Exit) -> None:
    assert exit_of(error) is status


def test_diff_names_each_changed_field() -> None:
    current = spec("a", name="Old", labels={"team": "x"}).model_dump(mode="json")
    change = diff(current, spec("a", name="New", labels={"team": "x"}))
    assert change.action is Action.UPDATED
    assert change.fields == {"name": ("Old", "New")}
    assert change.line() == 'a: updated (name: "Old" -> "New")'
    assert diff(current, spec("a", name="Old", labels={"team": "x"})).action is Action.UNCHANGED
    assert diff(None, spec("a")).action is Action.CREATED


def drawn(renderable: RenderableType) -> str:
    out = io.StringIO()
    Console(width=250, file=out, highlight=False).print(renderable)
    return out.getvalue()


def test_a_table_reads_the_reply_as_its_model() -> None:
    at = datetime(2026, 11, 25, 10, 0, 10, tzinfo=UTC)
    page = ScheduledJobList(
        scheduled_jobs=[
            ScheduledJobListItem(
                scheduled_job_id="nightly",
                status="active",
                interval={"hours": 2, "minutes": 30},
                next_run_at=at,
                run_count=3,
            )
        ],
        total=9,
        next_cursor="abc",
    )
    lines = drawn(tables.schedules(page.model_dump(mode="json"))).splitlines()
    assert lines[1].split() == ["nightly", "active", "every", "2h", "30m", "UTC", "-"] + [
        "2026-11-25",
        "10:00:10",
        "-",
        "-",
        "3",
    ]
    assert lines[-1].rstrip() == "1 of 9; next page: --cursor abc"


def test_a_reply_that_is_not_the_model_is_a_clear_error() -> None:
    with pytest.raises(UnexpectedReplyError, match="no ScheduledJobList") as raised:
        tables.schedules({"scheduled_jobs": [], "next_cursor": None})
    assert exit_of(raised.value) is Exit.FAILURE
