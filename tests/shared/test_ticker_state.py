"""KV `ticker_state` values (`SlotState`): what the ticker writes, reads back, and what the
API reads of them for `max_runs`."""

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from natscron_shared.contract.models import ScheduledJob
from natscron_shared.contract.ticker_state import SlotState, runs_left

T0 = datetime(2026, 11, 25, 12, tzinfo=UTC)


def hourly(max_runs: int | None) -> ScheduledJob:
    return ScheduledJob(
        scheduled_job_id="s",
        name="s",
        cron_expression="0 * * * *",
        scraper="noop",
        max_runs=max_runs,
    )


def test_a_state_reads_back_what_it_wrote_and_an_older_form() -> None:
    state = SlotState(T0, T0 - timedelta(seconds=1), False, 2, 5)
    assert SlotState.from_json(state.to_json()) == state
    old = SlotState.from_json('{"handled_until": "2026-11-25T13:00:00+01:00"}')
    assert old == SlotState(T0)
    assert old.handled_until.tzinfo is UTC


def test_a_state_saved_before_max_runs_existed_still_parses() -> None:
    old = SlotState.from_json('{"handled_until": "2026-11-25T12:00:00Z"}')
    assert (old.fired_runs, old.max_runs, old.active) == (0, None, True)


def test_a_value_without_handled_until_is_no_state() -> None:
    with pytest.raises(ValidationError):
        SlotState.from_json('{"fired_runs": 1, "max_runs": 3}')


def test_runs_left_counts_against_the_max_runs_it_was_made_for() -> None:
    limited = hourly(max_runs=5)
    counted = SlotState(handled_until=T0, fired_runs=3, max_runs=5)
    assert runs_left(limited, counted) == 2
    assert runs_left(limited, counted._replace(fired_runs=9)) == 0
    # max_runs changed (or newly added): a fresh count.
    assert runs_left(limited, counted._replace(max_runs=4)) == 5
    assert runs_left(limited, SlotState(handled_until=T0, fired_runs=40)) == 5
    assert runs_left(hourly(max_runs=None), counted) is None


def test_a_job_without_a_state_has_every_run_left() -> None:
    assert runs_left(hourly(max_runs=3), None) == 3
    assert runs_left(hourly(max_runs=None), None) is None
