"""One case per defect the croniter-based schedule had, each checked forward and newest first.

Expected slots are wall times in the schedule's zone with their UTC offset; New York springs
forward at 02:00 on 8 March 2026 (02:00-02:59 never happens) and falls back at 02:00 on
1 November 2026 (01:00-01:59 happens twice, first at -0400, then at -0500).
"""

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from natscron_shared.contract.models import ScheduledJob
from natscron_shared.timing.active_hours import ActiveHours
from natscron_shared.timing.schedule import next_fire_after, slots_between, slots_newest_first

SPRING_NIGHT = (datetime(2026, 3, 8, 5, tzinfo=UTC), datetime(2026, 3, 8, 9, tzinfo=UTC))
AUTUMN_NIGHT = (datetime(2026, 11, 1, 4, tzinfo=UTC), datetime(2026, 11, 1, 8, tzinfo=UTC))
WINTER_DAY = (datetime(2026, 1, 5, 5, tzinfo=UTC), datetime(2026, 1, 5, 23, tzinfo=UTC))
# Havana springs forward at midnight: 00:00-00:59 of 8 March 2026 never happens.
HAVANA_NIGHT = (datetime(2026, 3, 8, 3, tzinfo=UTC), datetime(2026, 3, 8, 9, tzinfo=UTC))


def job(
    cron: str, zone: str = "America/New_York", hours: ActiveHours | None = None
) -> ScheduledJob:
    return ScheduledJob(
        scheduled_job_id="s",
        name="s",
        scraper="noop",
        cron_expression=cron,
        timezone=zone,
        active_hours=hours,
    )


def local(slots: list[datetime], zone: str) -> list[str]:
    return [slot.astimezone(ZoneInfo(zone)).strftime("%H:%M:%S%z") for slot in slots]


CASES = [
    # A range of one value, or the full range, is that range, not `*`.
    ("30 5-5 * * *", WINTER_DAY, None, ["05:30:00-0500"]),
    ("0-0 12 * * *", WINTER_DAY, None, ["12:00:00-0500"]),
    (
        "0 23-23 * * *",
        (WINTER_DAY[0], datetime(2026, 1, 6, 5, tzinfo=UTC)),
        None,
        ["23:00:00-0500"],
    ),
    # `0-23` does not start with `*`: a fixed-time entry, a run right after the gap, one run in
    # the fold.
    (
        "30 0-23 * * *",
        SPRING_NIGHT,
        None,
        ["00:30:00-0500", "01:30:00-0500", "03:00:00-0400", "03:30:00-0400", "04:30:00-0400"],
    ),
    ("30 0-23 * * *", AUTUMN_NIGHT, None, ["00:30:00-0400", "01:30:00-0400", "02:30:00-0500"]),
    # An hour starting with `*` follows elapsed time: no extra run at the end of the gap.
    ("0 */2 * * *", SPRING_NIGHT, None, ["04:00:00-0400"]),
    # A 6-field fixed-time entry in the gap runs once, at second 0 of the first minute after,
    # however many of its seconds fall in the gap; a `*` seconds field does not make it
    # a wildcard entry, a `*` minute does.
    ("30 30 2 * * *", SPRING_NIGHT, None, ["03:00:00-0400"]),
    ("*/20 10-50/20 2 * * *", SPRING_NIGHT, None, ["03:00:00-0400"]),
    (
        "*/20 0,30 2,3 * * *",
        SPRING_NIGHT,
        None,
        ["03:00:00-0400", "03:00:20-0400"]
        + ["03:00:40-0400", "03:30:00-0400", "03:30:20-0400", "03:30:40-0400"],
    ),
    ("0 * 2 * * *", SPRING_NIGHT, None, []),
    # Catch-up across the fold keeps both passes of a wildcard hour.
    (
        "30 * * * *",
        AUTUMN_NIGHT,
        None,
        ["00:30:00-0400", "01:30:00-0400", "01:30:00-0500", "02:30:00-0500"],
    ),
    # Active hours starting in the gap open when the gap ends, not an hour later.
    (
        "*/30 * * * *",
        SPRING_NIGHT,
        ActiveHours(start=time(2, 30), end=time(4)),
        ["03:00:00-0400", "03:30:00-0400"],
    ),
    # Active hours ending in the fold: the window is open again on the second pass.
    (
        "*/20 * * * *",
        AUTUMN_NIGHT,
        ActiveHours(start=time(0, 30), end=time(1, 30)),
        ["00:40:00-0400", "01:00:00-0400", "01:20:00-0400", "01:00:00-0500", "01:20:00-0500"],
    ),
]


@pytest.mark.parametrize(
    ("cron", "night", "hours", "expected"),
    CASES,
    ids=[
        "one-value-range-hour",
        "one-value-range-minute",
        "one-value-range-23",
        "full-hour-range-is-fixed-in-gap",
        "full-hour-range-is-fixed-in-fold",
        "star-hour-has-no-gap-slot",
        "six-fields-gap-slot-at-second-0",
        "six-fields-many-gap-slots-collapse",
        "six-fields-gap-slot-is-also-a-match",
        "six-fields-star-minute-is-wildcard",
        "newest-first-keeps-first-pass-of-fold",
        "window-start-in-gap",
        "window-end-in-fold",
    ],
)
def test_new_york(
    cron: str,
    night: tuple[datetime, datetime],
    hours: ActiveHours | None,
    expected: list[str],
) -> None:
    spec = job(cron, hours=hours)
    forward = list(slots_between(spec, *night))
    assert local(forward, spec.timezone) == expected
    assert list(slots_newest_first(spec, *night)) == forward[::-1]


def test_step_hour_in_a_midnight_gap_has_no_slot() -> None:
    spec = job("0 */3 * * *", zone="America/Havana")
    slots = list(slots_between(spec, *HAVANA_NIGHT))
    assert local(slots, spec.timezone) == ["03:00:00-0400"]
    assert list(slots_newest_first(spec, *HAVANA_NIGHT)) == slots[::-1]


@pytest.mark.parametrize(
    ("cron", "hours", "after", "expected"),
    [
        # Open except 01:09-01:34; `after` is 01:22 on the second pass.
        (
            "* * * * *",
            ActiveHours(start=time(1, 34), end=time(1, 9)),
            datetime(2026, 11, 1, 6, 22),
            "01:34-0500",
        ),
        # `after` is 01:58 on the first pass; minutes 0-8 are next inside the window at 02:00.
        (
            "0-8 * * * *",
            ActiveHours(start=time(1, 45), end=time(2, 29)),
            datetime(2026, 11, 1, 5, 58),
            "02:00-0500",
        ),
    ],
    ids=["never-a-slot-in-the-past", "never-gives-up-in-the-fold"],
)
def test_next_slot_in_a_window_edged_by_the_fold(
    cron: str, hours: ActiveHours, after: datetime, expected: str
) -> None:
    spec = job(cron, hours=hours)
    start = after.replace(tzinfo=UTC)
    slot = next_fire_after(spec, start)
    assert slot is not None and slot > start
    assert slot.astimezone(ZoneInfo(spec.timezone)).strftime("%H:%M%z") == expected


def test_each_slot_in_a_fold_window_is_yielded_once() -> None:
    spec = job("* * * * *", hours=ActiveHours(start=time(1, 34), end=time(1, 9)))
    slots = list(slots_between(spec, *AUTUMN_NIGHT))
    assert slots == sorted(set(slots))
    assert len(slots) == 4 * 60 - 2 * 25  # 01:09-01:33 is closed on both passes


@pytest.mark.parametrize(
    "cron",
    ["* * 31 2 *", "0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 30-31 feb *", "0 0 0 31 2 *"],
)
def test_an_expression_that_can_never_fire_is_rejected(cron: str) -> None:
    with pytest.raises(ValidationError, match="never fires"):
        job(cron)
