"""Which slots a ticker fires after it was away: `catchup` and `misfire_grace_seconds`."""

from datetime import UTC, datetime, timedelta

import pytest

from natscron_shared.contract.decisions import DecisionKind
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.timing.schedule import next_fire_after, slots_between
from natscron_ticker.catchup import MAX_CATCHUP_RUNS, Skip, plan_firing

NOW = datetime(2026, 11, 25, 12, 0, 30, tzinfo=UTC)
MERGED, DROPPED = DecisionKind.CATCHUP_MERGED, DecisionKind.CATCHUP_DROPPED


def every_minute(catchup: str, grace: float = 300) -> ScheduledJob:
    return ScheduledJob(
        scheduled_job_id="s",
        name="s",
        cron_expression="* * * * *",
        scraper="noop",
        catchup=catchup,
        misfire_grace_seconds=grace,
    )


def minutes_ago(*minutes: float) -> tuple[datetime, ...]:
    return tuple((NOW - timedelta(seconds=30) - timedelta(minutes=m)) for m in minutes)


@pytest.mark.parametrize(
    ("catchup", "grace", "away_minutes", "fired", "skipped"),
    [
        # On time (the usual case): the one due slot fires, whatever the policy.
        ("latest", 300, 1, minutes_ago(0), 0),
        ("all", 300, 1, minutes_ago(0), 0),
        ("none", 300, 1, minutes_ago(0), 0),
        # Away 10 minutes: 10 slots in the window.
        ("all", 300, 10, minutes_ago(*range(9, -1, -1)), 0),
        ("latest", 300, 10, minutes_ago(0), 9),
        ("none", 300, 10, minutes_ago(0), 9),
        # The newest slot is older than the grace: `none` fires nothing, `latest` still one.
        ("none", 10, 10, (), 10),
        ("latest", 10, 10, minutes_ago(0), 9),
        # Nothing due yet.
        ("latest", 300, 0.25, (), 0),
    ],
)
def test_plan(
    catchup: str, grace: float, away_minutes: float, fired: tuple[datetime, ...], skipped: int
) -> None:
    plan = plan_firing(every_minute(catchup, grace), NOW - timedelta(minutes=away_minutes), NOW)
    assert plan.fire == fired
    assert plan.skipped == skipped


@pytest.mark.parametrize(
    ("catchup", "grace", "away_minutes", "skip"),
    [
        ("latest", 300, 1, None),
        ("all", 300, 10, None),
        # The 9 older slots merge into the run of the newest, which the window excludes.
        ("latest", 300, 10, Skip(MERGED, minutes_ago(1)[0], 9, minutes_ago(0)[0])),
        ("latest", 10, 10, Skip(MERGED, minutes_ago(1)[0], 9, minutes_ago(0)[0])),
        ("none", 300, 10, Skip(DROPPED, minutes_ago(1)[0], 9)),
        ("none", 10, 10, Skip(DROPPED, minutes_ago(0)[0], 10)),
        ("none", 10, 1, Skip(DROPPED, minutes_ago(0)[0], 1)),
    ],
)
def test_the_skipped_slots_are_a_window_up_to_the_newest_unfired_one(
    catchup: str, grace: float, away_minutes: float, skip: Skip | None
) -> None:
    """What the ticker records: the slots after `handled_until` up to `until`, but those it
    fires."""
    plan = plan_firing(every_minute(catchup, grace), NOW - timedelta(minutes=away_minutes), NOW)
    assert plan.skip == skip


def test_catchup_all_is_bounded_and_keeps_the_newest_slots() -> None:
    plan = plan_firing(every_minute("all"), NOW - timedelta(days=2), NOW)
    assert len(plan.fire) == MAX_CATCHUP_RUNS
    assert plan.fire[-1] == minutes_ago(0)[0]
    assert list(plan.fire) == sorted(plan.fire)
    assert plan.skipped == 2 * 24 * 60 - MAX_CATCHUP_RUNS
    assert plan.skip == Skip(
        DROPPED, plan.fire[0] - timedelta(minutes=1), 2 * 24 * 60 - MAX_CATCHUP_RUNS
    )


def test_a_slot_at_handled_until_is_never_fired_again() -> None:
    handled_until = minutes_ago(0)[0]
    assert plan_firing(every_minute("all"), handled_until, NOW).fire == ()


NEW_YORK_FALL_BACK = (datetime(2026, 11, 1, 4, tzinfo=UTC), datetime(2026, 11, 1, 8, tzinfo=UTC))


def new_york(cron: str, catchup: str) -> ScheduledJob:
    return ScheduledJob(
        scheduled_job_id="s",
        name="s",
        cron_expression=cron,
        timezone="America/New_York",
        scraper="noop",
        catchup=catchup,
    )


def test_catchup_across_a_fold_fires_both_passes_of_a_wildcard_hour() -> None:
    """01:30 happens at 05:30 and at 06:30 UTC; `30 * * * *` follows elapsed time."""
    plan = plan_firing(new_york("30 * * * *", "all"), *NEW_YORK_FALL_BACK)
    assert [slot.hour for slot in plan.fire] == [4, 5, 6, 7]
    assert plan.skipped == 0


def test_catchup_fires_the_gap_slot_that_was_announced() -> None:
    """02:30:30 does not happen on 8 March 2026; the announced slot, 03:00:00, is the one
    catch-up fires."""
    job = new_york("30 30 2 * * *", "latest")
    handled_until = datetime(2026, 3, 8, 6, tzinfo=UTC)
    announced = next_fire_after(job, handled_until)
    assert announced == datetime(2026, 3, 8, 7, tzinfo=UTC)
    plan = plan_firing(job, handled_until, announced + timedelta(minutes=5))
    assert plan.fire == (announced,)


@pytest.mark.parametrize(
    ("catchup", "left", "fired", "skipped"),
    [
        # Ten slots missed, three runs left: the three oldest fire (`all`).
        ("all", 3, minutes_ago(9, 8, 7), 7),
        ("all", 10, minutes_ago(*range(9, -1, -1)), 0),
        ("latest", 1, minutes_ago(0), 9),
        # Used up: nothing fires, and nothing is owed, so nothing counts as skipped.
        ("all", 0, (), 0),
        ("latest", 0, (), 0),
    ],
)
def test_max_runs_keeps_the_oldest_slots_it_has_runs_for(
    catchup: str, left: int, fired: tuple[datetime, ...], skipped: int
) -> None:
    plan = plan_firing(every_minute(catchup), NOW - timedelta(minutes=10), NOW, left)
    assert plan.fire == fired
    assert plan.skipped == skipped


def test_catchup_fires_the_jittered_slot_that_was_announced() -> None:
    job = ScheduledJob(
        scheduled_job_id="s",
        name="s",
        cron_expression="*/10 * * * *",
        jitter_seconds=500,
        scraper="noop",
        catchup="all",
    )
    handled_until = NOW - timedelta(hours=1)
    announced = next_fire_after(job, handled_until)
    assert announced is not None
    assert plan_firing(job, handled_until, announced - timedelta(microseconds=1)).fire == ()
    assert plan_firing(job, handled_until, announced).fire == (announced,)
    missed = plan_firing(job, handled_until, NOW).fire
    assert missed == tuple(slots_between(job, handled_until, NOW))
    assert [slot.minute for slot in missed] == [2, 14, 21, 31, 43, 54]
