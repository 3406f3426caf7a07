"""ISC cron's DST rule, one case per reading, each checked against the engine (forward and newest
first) and the brute-force reference.

An entry whose minute or hour field starts with `*` is a wildcard entry: it follows elapsed time,
so a fold repeats it and a gap skips it. Any other entry is fixed time: it runs once after a gap
that held one of its times, and only on the first pass of a fold. Seconds do not count.

Offset changes used (wall time, then UTC):
- New York 2026: 8 March 02:00 EST -> 03:00 EDT (07:00Z); 1 November 02:00 EDT -> 01:00 EST
  (06:00Z).
- London 2026: 29 March 01:00 GMT -> 02:00 BST (01:00Z).
- Lord Howe 2026, half an hour: 5 April 02:00 +11 -> 01:30 +1030 (4 April 15:00Z); 4 October
  02:00 +1030 -> 02:30 +11 (3 October 15:30Z).
- Apia 2011: 29 December 24:00 -10 -> 31 December 00:00 +14 (30 December 10:00Z).
- Casey 2009, three hours: 18 October 02:00 +08 -> 05:00 +11 (17 October 18:00Z), a jump
  ISC would take for a clock reset.
"""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from natscron_shared.contract.models import ScheduledJob
from natscron_shared.timing.schedule import slots_between, slots_newest_first
from tests.timing.cron_reference import reference_slots


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


NY = "America/New_York"
NY_SPRING = (utc(2026, 3, 8, 4), utc(2026, 3, 8, 10))
NY_FALL = (utc(2026, 11, 1, 4), utc(2026, 11, 1, 11))
LORD_HOWE = "Australia/Lord_Howe"
LORD_HOWE_SPRING = (utc(2026, 10, 3, 14), utc(2026, 10, 3, 17))
LORD_HOWE_FALL = (utc(2026, 4, 4, 13, 50), utc(2026, 4, 4, 16))
APIA_SKIPPED_DAY = (utc(2011, 12, 29, 10), utc(2011, 12, 30, 16))

CASES = {
    "minute-star-fixed-hours-runs-both-passes-of-the-fold": (
        NY,
        "* 1-6 * * *",
        (utc(2026, 11, 1, 5, 57), utc(2026, 11, 1, 6, 3)),
        ["01 01:58:00-0400", "01 01:59:00-0400"]
        + ["01 01:00:00-0500", "01 01:01:00-0500", "01 01:02:00-0500", "01 01:03:00-0500"],
    ),
    "minute-star-fixed-hour-has-no-slot-in-the-gap": (NY, "*/15 2 * * *", NY_SPRING, []),
    "minute-star-fixed-hour-runs-both-passes-of-the-fold": (
        NY,
        "*/15 1 * * *",
        NY_FALL,
        ["01 01:00:00-0400", "01 01:15:00-0400", "01 01:30:00-0400", "01 01:45:00-0400"]
        + ["01 01:00:00-0500", "01 01:15:00-0500", "01 01:30:00-0500", "01 01:45:00-0500"],
    ),
    "stepped-range-hour-is-fixed-time-in-the-fold": (
        NY,
        "0 1-5/2 * * *",
        NY_FALL,
        ["01 01:00:00-0400", "01 03:00:00-0500", "01 05:00:00-0500"],
    ),
    "stepped-range-hour-is-fixed-time-in-the-gap": (
        NY,
        "30 0-4/2 * * *",
        NY_SPRING,
        ["08 00:30:00-0500", "08 03:00:00-0400", "08 04:30:00-0400"],
    ),
    "star-stepped-hour-is-wildcard-in-the-fold": (
        NY,
        "30 */1 * * *",
        (utc(2026, 11, 1, 5), utc(2026, 11, 1, 7)),
        ["01 01:30:00-0400", "01 01:30:00-0500"],
    ),
    "london-fixed-time-in-the-gap-runs-at-two": (
        "Europe/London",
        "15 1 * * *",
        (utc(2026, 3, 29), utc(2026, 3, 29, 3)),
        ["29 02:00:00+0100"],
    ),
    "lord-howe-fixed-time-in-the-half-hour-gap": (
        LORD_HOWE,
        "15 2 * * *",
        LORD_HOWE_SPRING,
        ["04 02:30:00+1100"],
    ),
    "lord-howe-wildcard-in-the-half-hour-gap": (
        LORD_HOWE,
        "*/20 2 * * *",
        LORD_HOWE_SPRING,
        ["04 02:40:00+1100"],
    ),
    "lord-howe-fixed-time-in-the-half-hour-fold": (
        LORD_HOWE,
        "45 1 * * *",
        LORD_HOWE_FALL,
        ["05 01:45:00+1100"],
    ),
    "lord-howe-wildcard-in-the-half-hour-fold": (
        LORD_HOWE,
        "*/15 1 * * *",
        LORD_HOWE_FALL,
        ["05 01:00:00+1100", "05 01:15:00+1100", "05 01:30:00+1100", "05 01:45:00+1100"]
        + ["05 01:30:00+1030", "05 01:45:00+1030"],
    ),
    "apia-fixed-time-on-the-skipped-day-runs-once-after-it": (
        "Pacific/Apia",
        "0 6 * * *",
        APIA_SKIPPED_DAY,
        ["29 06:00:00-1000", "31 00:00:00+1400", "31 06:00:00+1400"],
    ),
    "apia-wildcard-skips-the-skipped-day": (
        "Pacific/Apia",
        "0 */6 * * *",
        APIA_SKIPPED_DAY,
        ["29 06:00:00-1000", "29 12:00:00-1000", "29 18:00:00-1000"]
        + ["31 00:00:00+1400", "31 06:00:00+1400"],
    ),
    "casey-fixed-time-in-a-three-hour-gap-runs-once-after-it": (
        "Antarctica/Casey",
        "30 3 * * *",
        (utc(2009, 10, 17, 12), utc(2009, 10, 18)),
        ["18 05:00:00+1100"],
    ),
    "seconds-star-with-a-fixed-minute-is-fixed-time-in-the-gap": (
        NY,
        "*/20 30 2 * * *",
        NY_SPRING,
        ["08 03:00:00-0400"],
    ),
    "seconds-star-with-a-fixed-minute-is-fixed-time-in-the-fold": (
        NY,
        "*/30 59 1 * * *",
        NY_FALL,
        ["01 01:59:00-0400", "01 01:59:30-0400"],
    ),
    "minute-star-with-seconds-is-wildcard-in-the-gap": (NY, "0 * 2 * * *", NY_SPRING, []),
}


@pytest.mark.parametrize(("zone", "cron", "span", "expected"), CASES.values(), ids=CASES.keys())
def test_isc_dst_rule(
    zone: str, cron: str, span: tuple[datetime, datetime], expected: list[str]
) -> None:
    spec = ScheduledJob(
        scheduled_job_id="s", name="s", scraper="noop", cron_expression=cron, timezone=zone
    )
    slots = list(slots_between(spec, *span))
    assert [slot.astimezone(ZoneInfo(zone)).strftime("%d %H:%M:%S%z") for slot in slots] == expected
    assert reference_slots(spec, *span) == slots
    assert list(slots_newest_first(spec, *span)) == slots[::-1]
