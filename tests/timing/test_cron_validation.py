"""What a cron expression may say, how each form reads, and which schedules are refused because
they could never fire."""

from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from natscron_shared.contract.models import ScheduledJob
from natscron_shared.timing.active_hours import ActiveHours
from natscron_shared.timing.cron_fields import parse_cron
from natscron_shared.timing.schedule import slots_between
from tests.timing.cron_reference import reference_slots


def job(cron: str, hours: ActiveHours | None = None) -> ScheduledJob:
    return ScheduledJob(
        scheduled_job_id="s", name="s", scraper="noop", cron_expression=cron, active_hours=hours
    )


@pytest.mark.parametrize(
    ("cron", "field", "values"),
    [
        ("0 0 * jan,JUL *", "months", (1, 7)),
        ("0 0 * * mon-fri", "weekdays", (1, 2, 3, 4, 5)),
        ("0 0 * * 7", "weekdays", (0,)),
        ("0 0 * * 5-7", "weekdays", (0, 5, 6)),
        ("0 0 * * */2", "weekdays", (0, 2, 4, 6)),
        ("5/20 * * * *", "minutes", (5, 25, 45)),
        ("0 1-10/4 * * *", "hours", (1, 5, 9)),
        ("0 5-5 * * *", "hours", (5,)),
        ("0 0 1,15 * *", "days", (1, 15)),
        ("*/15 0 0 * * *", "seconds", (0, 15, 30, 45)),
    ],
)
def test_field_forms(cron: str, field: str, values: tuple[int, ...]) -> None:
    assert getattr(parse_cron(cron), field) == values


@pytest.mark.parametrize(
    ("cron", "fixed"),
    [
        ("0 5 * * *", True),
        ("0 5-5 * * *", True),
        ("0 0-23 * * *", True),
        ("0 1,2 * * *", True),
        ("0 1-5/2 * * *", True),
        ("0 2/3 * * *", True),
        ("0-59 2 * * *", True),
        ("5,*/10 2 * * *", True),
        ("0 * * * *", False),
        ("0 */2 * * *", False),
        ("* 1-6 * * *", False),
        ("*/15 2 * * *", False),
        ("* * * * *", False),
        # Seconds set no flag: only the minute and the hour do.
        ("* 30 2 * * *", True),
        ("*/10 0 1-5/2 * * *", True),
        ("0 * 2 * * *", False),
        ("0 0 * * * *", False),
    ],
)
def test_an_entry_is_wildcard_when_its_minute_or_hour_starts_with_a_star(
    cron: str, fixed: bool
) -> None:
    """ISC cron's MIN_STAR and HR_STAR: read from a field's first character, not its values."""
    assert parse_cron(cron).fixed_time is fixed


@pytest.mark.parametrize(
    ("cron", "days"),
    [
        # Both day fields restricted: either matches (the 13th, and every Friday).
        ("0 0 13 11 5", [6, 13, 20, 27]),
        # A day field starting with `*` or `?` leaves the choice to the other one, as in ISC
        # cron, even with a step: odd days that are Fridays.
        ("0 0 */2 11 5", [13, 27]),
        ("0 0 ? 11 5", [6, 13, 20, 27]),
        ("0 0 13 11 ?", [13]),
    ],
)
def test_day_of_month_and_day_of_week(cron: str, days: list[int]) -> None:
    november = datetime(2026, 11, 1, tzinfo=UTC)
    slots = slots_between(job(cron), november - timedelta(seconds=1), november + timedelta(30))
    assert [slot.day for slot in slots] == days


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("0 0 L * *", "day of month 'L': 'L' is not a number"),
        ("0 0 15W * *", "'15W' is not a number"),
        ("0 0 * * 1#2", "day of week '1#2'"),
        ("H * * * *", "minute 'H'"),
        ("R * * * *", "minute 'R'"),
        ("0 ? * * *", "hour '?'"),
        ("0 24 * * *", "hour '24': 24 is outside 0-23"),
        ("0 0 0 * *", "day of month '0': 0 is outside 1-31"),
        ("0 0 * 13 *", "month '13'"),
        ("0 0 * * 8", "day of week '8'"),
        ("5-1 * * * *", "range '5-1' runs backwards"),
        ("*/0 * * * *", "step '0' is not a whole number of at least 1"),
        ("1,,2 * * * *", "'' is not a number"),
        ("0 0 * mon *", "month 'mon': 'mon' is not a number or a name"),
        ("@daily", "has 1 fields; expected 5 or 6"),
        ("0 0 1 1 * 2030 *", "has 7 fields"),
        ("* * 31 2 *", "never fires: day of month '31' does not occur in month '2'"),
        ("0 0 30 2 *", "never fires"),
    ],
)
def test_what_is_refused(cron: str, message: str) -> None:
    with pytest.raises(ValidationError) as error:
        job(cron)
    assert message in str(error.value)


def test_a_day_missing_from_the_month_can_still_match_by_weekday() -> None:
    """`31 2` never happens, but with both day fields restricted every Monday of February
    matches."""
    slots = slots_between(
        job("0 0 31 2 1"), datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 3, 1, tzinfo=UTC)
    )
    assert [slot.day for slot in slots] == [1, 8, 15, 22]


def test_a_rare_day_is_found_however_far() -> None:
    """29 February on a Sunday: 2032, then 2060."""
    sunday_leap_days = slots_between(
        job("0 0 29 2 */7"), datetime(2026, 1, 1, tzinfo=UTC), datetime(2070, 1, 1, tzinfo=UTC)
    )
    assert [slot.date() for slot in sunday_leap_days] == [date(2032, 2, 29), date(2060, 2, 29)]


def test_every_month_day_falls_on_every_weekday_within_400_years() -> None:
    """What `cron_window` relies on to judge by weekdays, 29 February included."""
    weekdays: dict[tuple[int, int], set[int]] = {}
    day = date(2000, 1, 1)
    while day.year < 2400:
        weekdays.setdefault((day.month, day.day), set()).add(day.weekday())
        day += timedelta(days=1)
    assert all(len(found) == 7 for found in weekdays.values())


@pytest.mark.parametrize(
    ("cron", "hours", "fires"),
    [
        ("0 3 * * *", ActiveHours(start=time(8), end=time(20)), False),
        ("0 9 * * 1", ActiveHours(start=time(8), end=time(20), weekdays=(2,)), False),
        ("59 19 * * *", ActiveHours(start=time(8), end=time(19, 59)), False),
        ("59 19 * * *", ActiveHours(start=time(8), end=time(19, 59, 0, 1)), True),
        ("0 9 * * 1", ActiveHours(start=time(8), end=time(20), weekdays=(1,)), True),
        # Overnight windows belong to the day they start on: Monday 02:00 is Sunday's window.
        ("0 2 * * 1", ActiveHours(start=time(22), end=time(6), weekdays=(7,)), True),
        ("0 2 * * 1", ActiveHours(start=time(22), end=time(6), weekdays=(1,)), False),
        # Either day field may match: the 13th can be a Tuesday.
        ("0 9 13 * 1", ActiveHours(start=time(8), end=time(20), weekdays=(2,)), True),
    ],
)
def test_a_cron_that_never_fires_inside_its_active_hours_is_refused(
    cron: str, hours: ActiveHours, fires: bool
) -> None:
    if fires:
        job(cron, hours)
    else:
        with pytest.raises(ValidationError, match="never fires inside active_hours"):
            job(cron, hours)


times = st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 59]))
weekday_sets = st.sets(st.integers(1, 7), min_size=1).map(lambda days: tuple(sorted(days)))


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["0", "*/20", "30", "0-10"]),
    st.sampled_from(["3", "*/6", "8-11", "22,23", "0-23"]),
    st.sampled_from(["*", "1", "mon-fri", "0,6"]),
    times,
    times,
    weekday_sets,
)
def test_the_window_check_agrees_with_a_week_of_slots(
    minute: str, hour: str, weekday: str, start: time, end: time, days: tuple[int, ...]
) -> None:
    """With only the weekday restricted, a week of wall times decides whether a cron ever
    fires inside a window (UTC, so no DST shift)."""
    if start == end:
        return
    hours = ActiveHours(start=start, end=end, weekdays=days)
    cron = f"{minute} {hour} * * {weekday}"
    monday = datetime(2026, 11, 2, tzinfo=UTC)
    found = reference_slots(job(cron), monday, monday + timedelta(days=8))
    fires = any(hours.contains(slot) for slot in found)
    if fires:
        job(cron, hours)
    else:
        with pytest.raises(ValidationError, match="never fires inside active_hours"):
            job(cron, hours)
