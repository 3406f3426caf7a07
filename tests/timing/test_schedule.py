"""The time maths of `natscron_shared.timing.schedule`: properties over random schedules and
moments, plus the cases users hit (time zones, DST, seconds, active hours)."""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from natscron_shared.contract.models import ScheduledJob
from natscron_shared.timing.active_hours import ActiveHours
from natscron_shared.timing.schedule import next_fire_after, slots_between, slots_newest_first

CRONS = ["*/30 * * * * *", "*/15 * * * *", "0 2 * * *", "30 */3 * * 1-5", "0 0 1 * *"]
ZONES = ["UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata", "Australia/Lord_Howe"]


def spec(**schedule: object) -> ScheduledJob:
    return ScheduledJob.model_validate(
        {"scheduled_job_id": "s", "name": "s", "scraper": "noop", **schedule}
    )


DST_CHANGES = [
    datetime(2026, 3, 8, 7, tzinfo=UTC),  # New York springs forward
    datetime(2026, 11, 1, 6, tzinfo=UTC),  # New York falls back
    datetime(2026, 3, 29, 1, tzinfo=UTC),  # Berlin
    datetime(2026, 10, 25, 1, tzinfo=UTC),
    datetime(2026, 4, 4, 15, tzinfo=UTC),  # Lord Howe falls back half an hour
    datetime(2026, 10, 3, 15, 30, tzinfo=UTC),
]
moments = st.one_of(
    st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC)
    ),
    st.builds(
        lambda change, seconds: change - timedelta(seconds=seconds),
        st.sampled_from(DST_CHANGES),
        st.integers(min_value=0, max_value=6 * 3600),
    ),
)
windows = st.builds(
    lambda bounds, days: ActiveHours(start=bounds[0], end=bounds[1], weekdays=days),
    st.tuples(st.times(), st.times()).filter(lambda bounds: bounds[0] != bounds[1]),
    st.sets(st.integers(1, 7), min_size=1).map(lambda days: tuple(sorted(days))),
)


def fires_in_window(cron: str, hours: ActiveHours | None) -> bool:
    """False for the pairs validation refuses: a cron that never fires inside its window."""
    try:
        spec(cron_expression=cron, active_hours=hours)
    except ValidationError:
        return False
    return True


specs = st.one_of(
    st.builds(
        lambda cron_hours, zone: spec(
            cron_expression=cron_hours[0], timezone=zone, active_hours=cron_hours[1]
        ),
        st.tuples(st.sampled_from(CRONS), st.none() | windows).filter(
            lambda cron_hours: fires_in_window(*cron_hours)
        ),
        st.sampled_from(ZONES),
    ),
    st.builds(
        lambda minutes: spec(interval_minutes=minutes),
        st.sampled_from([0.5, 1, 7, 60, 1440]),
    ),
    st.builds(
        lambda interval: spec(interval=interval),
        st.sampled_from([{"seconds": 45}, {"hours": 1, "minutes": 30}, {"days": 1}]),
    ),
    st.builds(lambda at: spec(run_at=at), moments),
)


@settings(max_examples=100, deadline=None)
@given(specs, moments, st.integers(min_value=1, max_value=24 * 3600))
def test_newest_first_is_the_reverse_of_oldest_first(
    job: ScheduledJob, after: datetime, seconds: int
) -> None:
    until = after + timedelta(seconds=seconds)
    forward = list(slots_between(job, after, until))
    assert list(slots_newest_first(job, after, until)) == forward[::-1]
    assert all(after < slot <= until for slot in forward)
    assert forward == sorted(set(forward))


@settings(max_examples=100, deadline=None)
@given(specs, moments)
def test_next_fire_is_strictly_later_and_inside_active_hours(
    job: ScheduledJob, after: datetime
) -> None:
    slot = next_fire_after(job, after)
    if slot is None:
        assert job.run_at is not None or job.active_hours is not None
        return
    assert slot > after
    assert slot.tzinfo is not None
    if job.active_hours is not None:
        assert job.active_hours.contains(slot.astimezone(job.zone))


@given(st.sampled_from([0.5, 1, 7, 60]), moments, moments)
def test_interval_slots_are_the_same_whoever_computes_them(
    minutes: float, first: datetime, second: datetime
) -> None:
    """Slots are aligned to the epoch, so two tickers started at different times agree."""
    job = spec(interval_minutes=minutes)
    period = timedelta(minutes=minutes).total_seconds()
    for start in (first, second):
        slot = next_fire_after(job, start)
        assert slot is not None
        assert slot.timestamp() % period == 0


def test_six_field_cron_has_seconds_first() -> None:
    job = spec(cron_expression="*/10 * * * * *")
    start = datetime(2026, 3, 1, 12, 0, 3, tzinfo=UTC)
    assert list(slots_between(job, start, start + timedelta(seconds=30))) == [
        datetime(2026, 3, 1, 12, 0, s, tzinfo=UTC) for s in (10, 20, 30)
    ]


def test_cron_is_evaluated_in_the_schedule_time_zone() -> None:
    job = spec(cron_expression="0 9 * * *", timezone="America/New_York")
    winter = next_fire_after(job, datetime(2026, 1, 10, tzinfo=UTC))
    summer = next_fire_after(job, datetime(2026, 7, 10, tzinfo=UTC))
    assert winter == datetime(2026, 1, 10, 14, 0, tzinfo=UTC)
    assert summer == datetime(2026, 7, 10, 13, 0, tzinfo=UTC)


def test_daily_job_fires_once_on_each_dst_change_day() -> None:
    """Berlin: 29 March 2026 has 23 hours, 25 October 2026 has 25; 09:00 fires once on each."""
    job = spec(cron_expression="0 9 * * *", timezone="Europe/Berlin")
    for day in (datetime(2026, 3, 29), datetime(2026, 10, 25)):
        start = day.replace(tzinfo=ZoneInfo("Europe/Berlin"))
        slots = list(slots_between(job, start, start + timedelta(hours=24)))
        assert [slot.astimezone(job.zone).time() for slot in slots] == [time(9, 0)]


NEW_YORK = ZoneInfo("America/New_York")
SPRING_NIGHT = (datetime(2026, 3, 8, 5, tzinfo=UTC), datetime(2026, 3, 8, 9, tzinfo=UTC))
AUTUMN_NIGHT = (datetime(2026, 11, 1, 4, tzinfo=UTC), datetime(2026, 11, 1, 8, tzinfo=UTC))


@pytest.mark.parametrize(
    ("cron", "night", "expected"),
    [
        # A fixed-time entry in the spring-forward gap fires once, right after it.
        ("30 2 * * *", SPRING_NIGHT, ["03:00-0400"]),
        ("15 1-3 * * *", SPRING_NIGHT, ["01:15-0500", "03:00-0400", "03:15-0400"]),
        # A fixed-time entry in the fall-back fold fires once, on the first pass.
        ("30 1 * * *", AUTUMN_NIGHT, ["01:30-0400"]),
        ("0 0 1 * * *", AUTUMN_NIGHT, ["01:00-0400"]),
        ("15 1-3 * * *", AUTUMN_NIGHT, ["01:15-0400", "02:15-0500"]),
        # An hour or minute starting with `*` follows real elapsed time: both passes of the
        # fold...
        ("0 */1 * * *", AUTUMN_NIGHT, ["01:00-0400", "01:00-0500", "02:00-0500", "03:00-0500"]),
        # ...and nothing for the hour that does not exist.
        ("0 * * * *", SPRING_NIGHT, ["01:00-0500", "03:00-0400", "04:00-0400", "05:00-0400"]),
    ],
)
def test_dst_changes_follow_isc_cron(
    cron: str, night: tuple[datetime, datetime], expected: list[str]
) -> None:
    job = spec(cron_expression=cron, timezone="America/New_York")
    slots = list(slots_between(job, *night))
    assert [slot.astimezone(NEW_YORK).strftime("%H:%M%z") for slot in slots] == expected
    assert list(slots_newest_first(job, *night)) == slots[::-1]


def test_active_hours_across_midnight_count_from_the_starting_day() -> None:
    hours = ActiveHours(start=time(22, 0), end=time(6, 0), weekdays=(5,))  # Friday night
    job = spec(cron_expression="0 * * * *", active_hours=hours)
    friday = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    slots = list(slots_between(job, friday, friday + timedelta(days=2)))
    assert [slot.hour for slot in slots] == [22, 23, 0, 1, 2, 3, 4, 5]
    assert slots[0].isoweekday() == 5 and slots[-1].isoweekday() == 6


def test_an_empty_active_window_is_rejected() -> None:
    with pytest.raises(ValidationError, match="window would be empty"):
        ActiveHours(start=time(9), end=time(9))


def test_one_time_job_fires_once() -> None:
    at = datetime(2026, 5, 1, 8, 30, tzinfo=UTC)
    job = spec(run_at=at)
    assert next_fire_after(job, at - timedelta(seconds=1)) == at
    assert next_fire_after(job, at) is None
