"""The zone cache and the offset changes `Timeline` finds, against the installed tzdata."""

import importlib
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, available_timezones

from hypothesis import given, settings
from hypothesis import strategies as st

from natscron_shared.contract.models import ScheduledJob
from natscron_shared.timing.cron_window import SPAN
from natscron_shared.timing.zones import (
    FALL_BACK_LIMIT,
    PROBE_STEP,
    Timeline,
    timeline_of,
    zone_named,
)

ZONES = sorted(available_timezones())


def test_offset_changes_keep_within_the_bounds_the_engine_relies_on() -> None:
    """Two changes closer than the probe step could hide each other; a fall-back longer than
    the limit would escape the engine's look-back. Read from the explicit transitions of the
    pure-Python zoneinfo (private, but only this test looks); the rules that follow them
    change offsets months apart, by an hour or less."""
    pure_zoneinfo = importlib.import_module("zoneinfo._zoneinfo")
    closest, longest_fall_back = timedelta.max, timedelta(0)
    for name in ZONES:
        zone = pure_zoneinfo.ZoneInfo.no_cache(name)
        offset = zone._tti_before.utcoff if zone._tti_before else None
        changes: list[tuple[int, timedelta]] = []
        for at, info in zip(zone._trans_utc, zone._ttinfos, strict=True):
            if info.utcoff != offset:
                if offset is not None:
                    changes.append((at, offset - info.utcoff))
                offset = info.utcoff
        for (first, _), (second, _) in zip(changes, changes[1:], strict=False):
            closest = min(closest, timedelta(seconds=second - first))
        longest_fall_back = max([longest_fall_back, *(back for _, back in changes)])
    assert closest > PROBE_STEP
    assert longest_fall_back < FALL_BACK_LIMIT


def test_zones_follow_their_rules_from_2100_on() -> None:
    """What `cron_window.SPAN` relies on: no zone lists an offset change of its own after
    2099, so 2100-2499 follows each zone's rules through a whole 400-year cycle."""
    pure_zoneinfo = importlib.import_module("zoneinfo._zoneinfo")
    zones = [pure_zoneinfo.ZoneInfo.no_cache(name) for name in ZONES]
    last = max(zone._trans_utc[-1] for zone in zones if len(zone._trans_utc))
    assert datetime.fromtimestamp(last, UTC) < datetime(2100, 1, 1, tzinfo=UTC)
    assert SPAN[1] >= datetime(2100 + 400, 1, 1, tzinfo=UTC)


def _hour_by_hour(zone: ZoneInfo, year: int) -> list[tuple[datetime, timedelta, timedelta]]:
    changes = []
    moment = datetime(year, 1, 1, tzinfo=UTC) - timedelta(hours=1)
    offset = moment.astimezone(zone).utcoffset()
    while moment.year <= year:
        moment += timedelta(hours=1)
        following = moment.astimezone(zone).utcoffset()
        if following != offset:
            assert offset is not None and following is not None
            second = moment - timedelta(hours=1)
            while second.astimezone(zone).utcoffset() == offset:
                second += timedelta(seconds=1)
            changes.append((second.replace(tzinfo=None), offset, following))
            offset = following
    return [change for change in changes if change[0].year == year]


@settings(max_examples=25, deadline=None)
@given(
    st.sampled_from(ZONES),
    st.integers(1900, 2037) | st.integers(2038, 2100),
)
def test_timeline_finds_every_change_of_a_year(name: str, year: int) -> None:
    """Against a scan hour by hour, in the years of explicit transitions and of the rules."""
    timeline = Timeline(ZoneInfo(name))
    found = timeline.between(
        datetime(year, 1, 1) - timedelta(microseconds=1), datetime(year, 12, 31, 23, 59, 59)
    )
    assert [(c.at, c.before, c.after) for c in found] == _hour_by_hour(ZoneInfo(name), year)


def test_zones_are_cached_beyond_zoneinfos_eight() -> None:
    """`ZoneInfo` keeps 8 zones alive; ours keeps each, so no zone is loaded twice."""
    names = ZONES[:20]
    first = [id(zone_named(name)) for name in names]
    assert [id(zone_named(name)) for name in names] == first
    assert timeline_of(names[0]) is timeline_of(names[0])


def test_a_schedules_zone_comes_from_the_cache() -> None:
    spec = ScheduledJob(
        scheduled_job_id="s",
        name="s",
        scraper="noop",
        interval_minutes=1,
        timezone="Europe/Berlin",
    )
    assert spec.zone is zone_named("Europe/Berlin")
