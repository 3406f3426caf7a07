"""Pieces of the command line that need no server: times, exit statuses, the apply diff,
the tables."""

import io
from datetime import UTC, datetime, timedelta

import pytest
import typer
from rich.console import Console, RenderableType

from natscron.cli import tables, times
from natscron.cli.api_client import UnexpectedReplyError
from natscron.cli.apply import Action, diff
from natscron.cli.exits import Exit, exit_of
from natscron.cli.times import parse_future_time, parse_time
from natscron_api.errors import ApiError
from natscron_api.views import ScheduledJobList, ScheduledJobListItem
from natscron_shared.contract.errors import BadRequestError, NatscronError
from natscron_shared.contract.suggestions import closest, did_you_mean
from natscron_shared.runtime.clock import ManualClock
from tests.api.api_support import spec


def test_times_are_iso_or_durations_counted_the_way_the_option_looks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    monkeypatch.setattr(times, "CLOCK", ManualClock(now))
    assert parse_time("2026-11-25T10:00") == datetime(2026, 11, 25, 10, tzinfo=UTC)
    offset = parse_time("2026-11-25T10:00+01:00")
    assert offset == datetime(2026, 11, 25, 9, tzinfo=UTC)
    assert parse_time("2h") == parse_time("-2h") == now - timedelta(hours=2)
    assert parse_time("7d") == now - timedelta(days=7)
    with pytest.raises(typer.BadParameter, match="is in the future"):
        parse_time("+2h")
    with pytest.raises(typer.BadParameter, match="is not a time"):
        parse_time("last tuesday")

    assert parse_future_time("1d") == parse_future_time("+1d") == now + timedelta(days=1)
    assert parse_future_time("-2h") == now - timedelta(hours=2)
    assert parse_future_time("2026-11-25T10:00") == datetime(2026, 11, 25, 10, tzinfo=UTC)
    with pytest.raises(typer.BadParameter, match="a duration from now: 1d"):
        parse_future_time("tomorrow")


def test_a_misspelt_name_gets_the_closest_real_one() -> None:
    fields = ["cron_expression", "interval", "timezone", "scraper"]
    assert did_you_mean("cron", fields) == " (did you mean 'cron_expression'?)"
    assert did_you_mean("timezon", fields) == " (did you mean 'timezone'?)"
    assert did_you_mean("xyz", fields) == ""
    ids = ["demo-austin-for-sale", "demo-denver-for-rent", "nightly"]
    assert closest("demo-austin-for-sal", ids, 3) == ["demo-austin-for-sale"]
    assert closest("demo-denver", ids, 3) == ["demo-denver-for-rent"]


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
        "UTC",
        "-",
        "-",
        "3",
    ]
    assert lines[-1].rstrip() == "1 of 9; next page: --cursor abc"


def test_a_reply_that_is_not_the_model_is_a_clear_error() -> None:
    with pytest.raises(UnexpectedReplyError, match="no ScheduledJobList") as raised:
        tables.schedules({"scheduled_jobs": [], "next_cursor": None})
    assert exit_of(raised.value) is Exit.FAILURE
