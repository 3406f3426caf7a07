"""The schedule engine against the brute-force reference (`tests/timing/cron_reference.py`): random
expressions of every field form, 5 and 6 fields, intervals and active hours, in every IANA zone
whose offset changes (since 1900: the local mean times with offsets in seconds too), at instants
near those changes, searched forward and newest first. Zones whose changes are odd are drawn
more often: half-hour shifts, skipped and repeated days, 2- and 3-hour steps, seconds."""

from datetime import UTC, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from hypothesis import HealthCheck, assume, given, reject, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from natscron_shared.contract.models import ScheduledJob
from natscron_shared.timing.active_hours import ActiveHours
from natscron_shared.timing.schedule import next_fire_after, slots_between, slots_newest_first
from tests.timing.cron_reference import MONTHS, WEEKDAYS, reference_slots

YEARS = range(1900, 2038)
ODD_ZONES = (
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",  # 30 minutes forward and back; an hour in 1981
    "Pacific/Apia",  # 30 December 2011 never happened
    "Pacific/Kwajalein",  # a day repeated in 1969, one skipped in 1993
    "Antarctica/Casey",  # 3 hours forward and back
    "Antarctica/Troll",  # 2 hours forward and back
    "Asia/Pyongyang",  # 30 minutes back in 2015, forward in 2018
    "Asia/Kathmandu",  # 15 minutes forward in 1986
    "Africa/Casablanca",  # an hour back and forward again around each Ramadan
    "America/Havana",  # the gap starts at midnight
    "Europe/Amsterdam",  # 28 seconds forward in 1937
    "Africa/Monrovia",  # 44 minutes 30 seconds forward in 1972
)


def _years_with_changes(name: str) -> tuple[int, ...]:
    """Years whose offset on 1 January or 1 July differs from the one six months earlier."""
    zone = ZoneInfo(name)
    offsets = [
        datetime(year, month, 1, tzinfo=UTC).astimezone(zone).utcoffset()
        for year in (*YEARS, YEARS[-1] + 1)
        for month in (1, 7)
    ]
    return tuple(
        year for index, year in enumerate(YEARS) if len(set(offsets[2 * index : 2 * index + 3])) > 1
    )


ZONE_YEARS = {
    name: years for name in sorted(available_timezones()) if (years := _years_with_changes(name))
}


@cache
def _changes(name: str, year: int) -> list[datetime]:
    """The instants of `year` at which the zone's offset changes, to draw test moments near:
    read day by day (changes are days apart), bisected to the second."""
    zone = ZoneInfo(name)

    def offset(moment: datetime) -> timedelta | None:
        return moment.astimezone(zone).utcoffset()

    changes = []
    days = [datetime(year, 1, 1, tzinfo=UTC) + timedelta(days=n) for n in range(367)]
    for before, after in zip(days, days[1:], strict=False):
        if offset(before) != offset(after):
            while after - before > timedelta(seconds=1):
                middle = before + (after - before) // timedelta(seconds=2) * timedelta(seconds=1)
                before, after = (
                    (before, middle) if offset(middle) == offset(after) else (middle, after)
                )
            changes.append(after)
    return changes


@st.composite
def offset_changes_anywhere(draw: st.DrawFn) -> tuple[str, datetime]:
    name = draw(st.sampled_from(ODD_ZONES) | st.sampled_from(sorted(ZONE_YEARS)))
    changes = _changes(name, draw(st.sampled_from(ZONE_YEARS[name])))
    assume(changes)
    return name, draw(st.sampled_from(changes))


def draw_field(
    draw: st.DrawFn, low: int, high: int, near: list[int], names: tuple[str, ...] = ()
) -> str:
    """One cron field in any of its forms (`*`, value, name, ranges including `a-a` and the
    full range, steps on each, lists), values drawn mostly near `near`."""
    if draw(st.integers(0, 4)) == 0:
        return "*"
    items = [_draw_item(draw, low, high, near, names) for _ in range(draw(st.integers(1, 3)))]
    return ",".join(items)


def _draw_item(
    draw: st.DrawFn, low: int, high: int, near: list[int], names: tuple[str, ...]
) -> str:
    def value() -> int:
        candidates = [v for v in near if low <= v <= high]
        near_one: bool = draw(st.booleans())
        if candidates and near_one:
            return draw(st.sampled_from(candidates))
        return draw(st.integers(low, high))

    first, second = sorted((value(), value()))
    step = draw(st.integers(1, 7))
    forms = [
        str(first),
        f"{first}-{second}",
        f"{first}-{first}",
        f"{first}-{second}/{step}",
        f"{first}/{step}",
        f"*/{step}",
        f"{low}-{high}",
        *([names[first % len(names)].upper(), names[first % len(names)]] if names else []),
    ]
    return draw(st.sampled_from(forms))


def draw_rarely_restricted(
    draw: st.DrawFn, low: int, high: int, near: list[int], names: tuple[str, ...] = ()
) -> str:
    return "*" if draw(st.integers(0, 2)) else draw_field(draw, low, high, near, names)


def walls_near(change: datetime, zone: ZoneInfo) -> list[datetime]:
    """Wall times around an offset change read with the old and with the new offset: they
    include the wall times of its gap (which no instant reads as) or of its fold."""
    offsets = [(change + timedelta(seconds=s)).astimezone(zone).utcoffset() for s in (-1, 0)]
    return [
        (change + offset + timedelta(minutes=minutes)).replace(tzinfo=None)
        for offset in offsets
        if offset is not None
        for minutes in (-60, -1, 0, 15, 30, 59, 60)
    ]


@st.composite
def cron_expressions(draw: st.DrawFn, change: datetime, zone: ZoneInfo) -> str:
    """An expression likely to have slots near `change`, in the gap or the fold it makes."""
    walls = walls_near(change, zone)
    day = walls[2]
    parts = [
        draw_field(draw, 0, 59, [0, 15, 30, 45, *(wall.minute for wall in walls)]),
        draw_field(draw, 0, 23, [wall.hour for wall in walls]),
        draw_rarely_restricted(draw, 1, 31, [day.day, day.day + 1]),
        draw_rarely_restricted(draw, 1, 12, [day.month], MONTHS),
        draw_rarely_restricted(draw, 0, 7, [day.isoweekday() % 7], WEEKDAYS),
    ]
    if draw(st.integers(0, 3)) == 0:
        parts.insert(0, draw_field(draw, 0, 59, [0, 30, 59]))
    return " ".join(parts)


@st.composite
def windows(draw: st.DrawFn, change: datetime, zone: ZoneInfo) -> ActiveHours:
    """A window whose start or end often falls in the gap or the fold of `change`."""

    walls = [wall.time().replace(second=0) for wall in walls_near(change, zone)]

    def moment() -> time:
        return draw(st.sampled_from(walls) | st.sampled_from(walls) | st.times())

    start, end = moment(), moment()
    assume(start != end)
    weekdays = draw(st.just((1, 2, 3, 4, 5, 6, 7)) | st.sets(st.integers(1, 7), min_size=1))
    return ActiveHours(start=start, end=end, weekdays=tuple(sorted(weekdays)))


@st.composite
def cases(draw: st.DrawFn) -> tuple[ScheduledJob, datetime, timedelta]:
    """A schedule, a moment near an offset change and a span to compare over."""
    name, change = draw(offset_changes_anywhere())
    zone = ZoneInfo(name)
    schedule: dict[str, object]
    if draw(st.integers(0, 4)):
        schedule = {"cron_expression": draw(cron_expressions(change, zone))}
    else:
        schedule = {"interval_minutes": draw(st.sampled_from([0.5, 1, 7, 15, 30, 60, 90, 1440]))}
    hours = draw(st.none() | st.none() | windows(change, zone))
    try:
        job = ScheduledJob.model_validate(
            {
                "scheduled_job_id": "s",
                "name": "s",
                "scraper": "noop",
                "timezone": name,
                "active_hours": hours,
                **schedule,
            }
        )
    except ValidationError:
        reject()
    seconds = draw(st.integers(-6 * 3600, 2 * 3600) | st.integers(-2 * 86400, 2 * 86400))
    after = change + timedelta(seconds=seconds, microseconds=draw(st.sampled_from([0, 1, 999_999])))
    six_fields = len((job.cron_expression or "").split()) == 6
    span = timedelta(minutes=draw(st.integers(1, 120 if six_fields else 30 * 60)))
    return job, after, span


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_engine_agrees_with_the_reference(case: tuple[ScheduledJob, datetime, timedelta]) -> None:
    job, after, span = case
    until = after + span
    expected = reference_slots(job, after, until)
    following = next_fire_after(job, after)
    if expected:
        assert following == expected[0]
    else:
        assert following is None or following > until
    assert list(slots_between(job, after, until)) == expected
    assert list(slots_newest_first(job, after, until)) == expected[::-1]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_the_slot_announced_next_is_the_slot_that_fires(
    case: tuple[ScheduledJob, datetime, timedelta],
) -> None:
    """What the ticker announces (`next_fire_after`) is what catch-up then finds newest first."""
    job, after, _ = case
    announced = next_fire_after(job, after)
    assume(announced is not None)
    assert announced is not None
    assert next(slots_newest_first(job, after, announced)) == announced
    assert next(slots_newest_first(job, after, announced - timedelta(microseconds=1)), None) is None
