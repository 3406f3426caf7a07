"""The fate of each nominal slot (`natscron_shared.timing.slot_fates`) agrees with the slots
the ticker fires, whatever the engine's DST rule: as a property over random specs and
spans, and in the cases `explain` names (a DST gap and fold in a real zone, bounds, active
hours, jitter)."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given

from natscron_shared.timing.schedule import slots_between
from natscron_shared.timing.slot_fates import (
    Fate,
    SlotMove,
    TooManySlotsError,
    nominal_slots,
    slot_move,
)
from tests.ticker.test_schedule_features import PROPERTY_SETTINGS, Case, cases
from tests.timing.test_schedule import spec

TICK = timedelta(microseconds=1)
NO_LIMIT = 1_000_000


@PROPERTY_SETTINGS
@given(cases())
def test_the_slots_fated_to_fire_are_the_slots_the_ticker_fires(case: Case) -> None:
    """Every slot fired for a nominal instant in the span is one the fates say fires, at the
    same instant; every nominal slot lies in the span, in order; a jittered or moved slot
    tells its nominal instant (`slot_move`), as its run request will."""
    job, start, end = case
    fates = nominal_slots(job, start, end, NO_LIMIT)
    jitter = timedelta(seconds=job.jitter_seconds)
    fired = []
    for slot in slots_between(job, start - jitter - TICK, end + jitter):
        move = slot_move(job, slot)
        if start <= (slot if move is None else move[0]) < end:
            fired.append(slot)
    assert sorted({n.slot_at for n in fates if n.slot_at is not None}) == fired
    assert [n.nominal_at for n in fates] == sorted(n.nominal_at for n in fates)
    for nominal in fates:
        assert start <= nominal.nominal_at < end
        assert (nominal.slot_at is not None) == nominal.fate.fires
        if nominal.slot_at is not None:
            assert timedelta(0) <= nominal.slot_at - nominal.nominal_at < max(jitter, TICK)
            move = slot_move(job, nominal.slot_at)
            assert (move[1] if move else ()) == nominal.moves
            assert move is None or move[0] == nominal.nominal_at


LONDON = "Europe/London"
SPRING = (datetime(2026, 3, 28, 23, tzinfo=UTC), datetime(2026, 3, 29, 3, tzinfo=UTC))
AUTUMN = (datetime(2026, 10, 24, 23, tzinfo=UTC), datetime(2026, 10, 25, 3, tzinfo=UTC))


Fated = tuple[str, bool, Fate, datetime | None]


def fates_of(cron: str, span: tuple[datetime, datetime], **fields: object) -> list[Fated]:
    job = spec(cron_expression=cron, timezone=LONDON, **fields)
    return [
        (n.wall.strftime("%H:%M"), n.second_pass, n.fate, n.slot_at)
        for n in nominal_slots(job, *span, NO_LIMIT)
    ]


def utc(hour: int, minute: int, day: int) -> datetime:
    return datetime(2026, 3 if day == 29 else 10, day, hour, minute, tzinfo=UTC)


def test_a_gap_moves_a_fixed_time_slot_to_its_end_and_skips_wildcard_ones() -> None:
    """Entries that both DST rules ever used in natscron read the same way."""
    assert fates_of("30 1 * * *", SPRING) == [
        ("01:30", False, Fate.DST_GAP_MOVED, utc(1, 0, 29)),
    ]
    assert fates_of("*/30 * * * *", SPRING) == [
        ("23:00", False, Fate.FIRES, datetime(2026, 3, 28, 23, tzinfo=UTC)),
        ("23:30", False, Fate.FIRES, datetime(2026, 3, 28, 23, 30, tzinfo=UTC)),
        ("00:00", False, Fate.FIRES, utc(0, 0, 29)),
        ("00:30", False, Fate.FIRES, utc(0, 30, 29)),
        ("01:00", False, Fate.DST_GAP_SKIPPED, None),
        ("01:30", False, Fate.DST_GAP_SKIPPED, None),
        ("02:00", False, Fate.FIRES, utc(1, 0, 29)),
        ("02:30", False, Fate.FIRES, utc(1, 30, 29)),
        ("03:00", False, Fate.FIRES, utc(2, 0, 29)),
        ("03:30", False, Fate.FIRES, utc(2, 30, 29)),
    ]


def test_a_fold_fires_a_fixed_time_slot_once_and_a_wildcard_one_on_both_passes() -> None:
    assert fates_of("30 1 * * *", AUTUMN) == [
        ("01:30", False, Fate.FIRES, utc(0, 30, 25)),
        ("01:30", True, Fate.DST_FOLD_SKIPPED, None),
    ]
    both = [(wall, second) for wall, second, _, _ in fates_of("0 * * * *", AUTUMN)]
    assert both == [("00:00", False), ("01:00", False), ("01:00", True), ("02:00", False)]


def test_bounds_and_active_hours_apply_to_the_instant_the_engine_gives() -> None:
    """The gap's slot is at 02:00 BST: outside a window that closes at 02:00."""
    hours = {"start": "00:00", "end": "02:00"}
    assert fates_of("30 1 * * *", SPRING, active_hours=hours) == [
        ("01:30", False, Fate.OUTSIDE_ACTIVE_HOURS, None),
    ]
    start_at, end_at = utc(0, 10, 29), utc(1, 10, 29)
    bounded = fates_of("*/30 * * * *", SPRING, start_at=start_at, end_at=end_at)
    assert [(wall, fate) for wall, _, fate, _ in bounded] == [
        ("23:00", Fate.BEFORE_START),
        ("23:30", Fate.BEFORE_START),
        ("00:00", Fate.BEFORE_START),
        ("00:30", Fate.FIRES),
        ("01:00", Fate.DST_GAP_SKIPPED),
        ("01:30", Fate.DST_GAP_SKIPPED),
        ("02:00", Fate.FIRES),
        ("02:30", Fate.AFTER_END),
        ("03:00", Fate.AFTER_END),
        ("03:30", Fate.AFTER_END),
    ]


def test_a_jittered_slot_keeps_its_nominal_instant_and_says_it_moved() -> None:
    job = spec(cron_expression="* * * * *", jitter_seconds=30)
    start = datetime(2026, 11, 25, 12, tzinfo=UTC)
    (first, *_) = nominal_slots(job, start, start + timedelta(minutes=3), NO_LIMIT)
    assert first.nominal_at == first.instant == start
    assert first.slot_at is not None and first.slot_at > start
    assert first.moves == (SlotMove.JITTER,)
    assert slot_move(job, first.slot_at) == (start, (SlotMove.JITTER,))
    assert slot_move(spec(cron_expression="* * * * *"), start) is None


def test_an_interval_reads_its_wall_times_in_its_zone() -> None:
    job = spec(interval={"minutes": 30}, timezone=LONDON)
    fates = nominal_slots(job, *AUTUMN, NO_LIMIT)
    assert [(n.wall.strftime("%H:%M"), n.second_pass) for n in fates][2:6] == [
        ("01:00", False),
        ("01:30", False),
        ("01:00", True),
        ("01:30", True),
    ]
    assert all(n.fate is Fate.FIRES for n in fates)


def test_more_slots_than_the_limit_is_an_error_not_a_partial_answer() -> None:
    job = spec(cron_expression="* * * * * *")
    start = datetime(2026, 11, 25, tzinfo=UTC)
    with pytest.raises(TooManySlotsError, match="more than 100 nominal slots"):
        nominal_slots(job, start, start + timedelta(minutes=2), 100)
    assert len(nominal_slots(job, start, start + timedelta(seconds=100), 100)) == 100
