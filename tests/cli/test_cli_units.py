"""Pieces of the command line that need no server: times, exit statuses, the apply diff."""

from datetime import UTC, datetime, timedelta

import pytest
import typer

from natscron.cli.apply import Action, diff
from natscron.cli.exits import Exit, exit_of
from natscron.cli.times import parse_time
from natscron_api.errors import ApiError
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
