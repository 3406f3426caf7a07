"""A cron schedule is refused for never firing inside its active hours exactly when the engine
has no slot inside them: spring-forward slots count, in every zone.

The property compares `fires_inside` over a span of a few years around a zone's offset changes
with the slot search the ticker fires by (`schedule.next_fire_after`, bounded to the span),
which `test_cron_properties.py` holds to the brute-force reference."""

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, event, given, reject, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from natscron_shared.contract.models import ScheduledJob
from natscron_shared.timing.active_hours import ActiveHours
from natscron_shared.timing.cron_fields import parse_cron
from natscron_shared.timing.cron_window import fires_inside
from natscron_shared.timing.schedule import next_fire_after, slots_between
from tests.timing.test_cron_properties import cron_expressions, offset_changes_anywhere, windows

_TICK = timedelta(microseconds=1)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def job(cron: str, zone: str, hours: ActiveHours) -> ScheduledJob:
    return ScheduledJob(
        scheduled_job_id="s",
        name="s",
        scraper="noop",
        cron_expression=cron,
        timezone=zone,
        active_hours=hours,
    )


@dataclass(frozen=True)
class Unchecked:
    """A cron schedule bounded to a span, as the slot maths read it, not validated."""

    cron_expression: str
    timezone: str
    active_hours: ActiveHours
    start_at: datetime
    end_at: datetime
    scheduled_job_id: str = "s"
    interval_period: None = None
    run_at: None = None
    jitter_seconds: float = 0.0


def engine_fires_inside(
    cron: str, zone: str, hours: ActiveHours, span: tuple[datetime, datetime]
) -> bool:
    low, high = span
    spec = Unchecked(cron, zone, hours, low, high - _TICK)
    return next_fire_after(spec, low - _TICK) is not None


def window(start: time, end: time) -> ActiveHours:
    return ActiveHours(start=start, end=end)


YEAR_2026 = (utc(2026, 1, 1), utc(2027, 1, 1))
CASES = {
    # 01:15 never happens on 29 March; the run moves to 02:00 BST, inside.
    "london-gap-slot-moves-into-the-window": (
        "15 1 * * *",
        "Europe/London",
        window(time(2), time(23, 30)),
        [utc(2026, 3, 29, 1)],
    ),
    "london-gap-slot-stays-outside-a-later-window": (
        "15 1 * * *",
        "Europe/London",
        window(time(2, 30), time(23, 30)),
        None,
    ),
    "new-york-fixed-time-gap-slot-at-three": (
        "10 2 * * *",
        "America/New_York",
        window(time(3), time(12)),
        [utc(2026, 3, 8, 7)],
    ),
    # A minute starting with `*` makes a wildcard entry: its gap times are skipped, not moved.
    "new-york-wildcard-minute-has-no-gap-slot": (
        "*/10 2 * * *",
        "America/New_York",
        window(time(3), time(12)),
        None,
    ),
    "lord-howe-half-hour-gap-slot": (
        "15 2 * * *",
        "Australia/Lord_Howe",
        window(time(2, 30), time(3)),
        [utc(2026, 10, 3, 15, 30)],
    ),
    "no-gap-without-dst": ("15 1 * * *", "UTC", window(time(2), time(23, 30)), None),
    "a-fold-adds-no-wall-time": ("30 1 * * *", "America/New_York", window(time(2), time(3)), None),
}


@pytest.mark.parametrize(("cron", "zone", "hours", "inside"), CASES.values(), ids=CASES.keys())
def test_refused_exactly_when_no_slot_is_inside(
    cron: str, zone: str, hours: ActiveHours, inside: list[datetime] | None
) -> None:
    if inside is None:
        with pytest.raises(ValidationError, match=f"never fires inside active_hours .* in {zone}"):
            job(cron, zone, hours)
        assert not engine_fires_inside(cron, zone, hours, YEAR_2026)
    else:
        assert list(slots_between(job(cron, zone, hours), *YEAR_2026)) == inside


def test_a_schedule_firing_only_on_dst_days_is_found_from_any_year() -> None:
    spec = job("10 2 * * *", "America/New_York", window(time(3), time(12)))
    slot = next_fire_after(spec, utc(2031, 6, 1))
    assert slot is not None
    assert slot.astimezone(ZoneInfo("America/New_York")).isoformat() == "2032-03-14T03:00:00-04:00"


@st.composite
def gap_slot_cases(draw: st.DrawFn, change: datetime, zone: ZoneInfo) -> tuple[str, ActiveHours]:
    """A cron matching a wall time that `change` skips, and a window opening near the end of
    the skipped time, so that often only the slot at the end of the gap is inside."""
    before, after = ((change + timedelta(seconds=s)).astimezone(zone).utcoffset() for s in (-1, 0))
    assert before is not None and after is not None
    assume(after > before)
    skipped = after - before
    first_wall = (change + before).replace(tzinfo=None)
    wall = first_wall + draw(st.integers(0, skipped // timedelta(seconds=1) - 1)) * timedelta(
        seconds=1
    )
    step = draw(st.integers(1, 30))
    minute = draw(st.sampled_from([f"{wall.minute}", f"{wall.minute}/{step}", "*", f"*/{step}"]))
    day = draw(st.sampled_from(["*", str(wall.day), f"{wall.day}-{min(wall.day + 3, 31)}"]))
    weekday = draw(st.sampled_from(["*", str(wall.isoweekday() % 7)]))
    cron = f"{minute} {wall.hour} {day} {wall.month} {weekday}"
    if draw(st.booleans()):
        cron = f"{wall.second} {cron}"
    gap_end = (change + after).replace(tzinfo=None)
    start = (gap_end + timedelta(minutes=draw(st.integers(-2, 1)))).time().replace(second=0)
    end = (gap_end + timedelta(minutes=draw(st.integers(1, 90)))).time()
    weekdays = draw(
        st.just((1, 2, 3, 4, 5, 6, 7))
        | st.just((gap_end.isoweekday(),))
        | st.sets(st.integers(1, 7), min_size=1)
    )
    if start == end:
        reject()
    return cron, ActiveHours(start=start, end=end, weekdays=tuple(sorted(weekdays)))


@st.composite
def cases(draw: st.DrawFn) -> tuple[str, str, ActiveHours, tuple[datetime, datetime]]:
    """A cron and a window near an offset change, and a span of whole years around it."""
    name, change = draw(offset_changes_anywhere())
    zone = ZoneInfo(name)
    if draw(st.booleans()):
        cron, hours = draw(gap_slot_cases(change, zone))
    else:
        cron, hours = draw(cron_expressions(change, zone)), draw(windows(change, zone))
    first = change.year - draw(st.integers(0, 1))
    span = (utc(first, 1, 1), utc(first + draw(st.integers(1, 3)), 1, 1))
    try:
        parse_cron(cron)
    except ValueError:  # a day of month no month has
        reject()
    return cron, name, hours, span


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_fires_inside_agrees_with_the_slot_search(
    case: tuple[str, str, ActiveHours, tuple[datetime, datetime]],
) -> None:
    cron, zone, hours, span = case
    expected = engine_fires_inside(cron, zone, hours, span)
    event(f"fires inside: {expected}, fixed time: {parse_cron(cron).fixed_time}")
    assert fires_inside(cron, zone, hours, span) is expected
