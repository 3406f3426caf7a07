"""What becomes of each nominal slot of a spec: the facts `explain` reports that follow from
the spec alone, asked of the same slot maths the ticker fires by (`schedule.SlotSet`, the
cron engine and its DST rule), never worked out a second way.

A nominal slot is a wall time the cron expression matches in the schedule's zone (a wall
time a fall-back repeats is two, one per pass; one a spring-forward gap skips is one with no
instant), an interval's multiple of its period, or the one `run_at`. Its fate:

- `fires`: a slot, at its instant (delayed by jitter, `moves`);
- `dst_gap_moved`: its wall time falls in a gap, and the engine has its slot at the gap's
  end; `dst_gap_skipped`: the engine has none there (a wildcard entry);
- `dst_fold_skipped`: the pass of a repeated wall time the engine does not fire (the second,
  for a fixed-time entry);
- `before_start`, `after_end`, `outside_active_hours`: dropped by the bounds or the window,
  which apply to the instant the engine gives (for a gap, its end).

`slot_move` is the ticker's side: for a slot it fires, its nominal instant and what moved it
there, which the run request carries (`RunRequest.moved_by`).
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from natscron_shared.timing.cron_calendar import WallCalendar
from natscron_shared.timing.cron_engine import cron_engine
from natscron_shared.timing.cron_fields import parse_cron
from natscron_shared.timing.schedule import SlotSet, SlotSpec
from natscron_shared.timing.zones import Transition, timeline_of, zone_named

_TICK = timedelta(microseconds=1)
_SECOND = timedelta(seconds=1)
_AROUND = timedelta(days=2)
"""Offset changes this far around a range can bring its instants' wall times into it."""


class SlotMove(StrEnum):
    """Why a slot fires away from its nominal wall time."""

    DST_GAP = "dst_gap"
    """Its wall time never happens (spring forward): it fires at the end of the gap."""
    JITTER = "jitter"
    """Its deterministic delay (`jitter_seconds`)."""


class Fate(StrEnum):
    FIRES = "fires"
    DST_GAP_MOVED = "dst_gap_moved"
    DST_GAP_SKIPPED = "dst_gap_skipped"
    DST_FOLD_SKIPPED = "dst_fold_skipped"
    BEFORE_START = "before_start"
    AFTER_END = "after_end"
    OUTSIDE_ACTIVE_HOURS = "outside_active_hours"

    @property
    def fires(self) -> bool:
        return self in (Fate.FIRES, Fate.DST_GAP_MOVED)


@dataclass(frozen=True, slots=True)
class NominalSlot:
    wall: datetime
    """Its wall time in the schedule's zone (naive)."""
    instant: datetime | None
    """That wall time as an instant (UTC); None for one a gap skips."""
    second_pass: bool
    """The second time a fall-back brings this wall time."""
    fate: Fate
    nominal_at: datetime
    """The instant the slot maths start from: `instant`, or for a gap the gap's end."""
    slot_at: datetime | None
    """When it fires (UTC), after the DST rule and jitter; None if it does not."""
    moves: tuple[SlotMove, ...] = ()


class TooManySlotsError(ValueError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the range holds more than {limit} nominal slots")
        self.limit = limit


def nominal_slots(spec: SlotSpec, start: datetime, end: datetime, limit: int) -> list[NominalSlot]:
    """The nominal slots of `spec` whose `nominal_at` lies in `[start, end)`, in that order;
    `TooManySlotsError` past `limit`. An interval `from: last_run` has no nominal slots of its
    own (they follow its runs): only its `start_at` grid is read here."""
    slots = SlotSet(spec)
    low, high = _naive_utc(start), _naive_utc(end)
    if spec.cron_expression is not None:
        found = _cron_nominals(spec.cron_expression, spec.timezone, low, high, limit)
    else:
        found = _instants(slots, spec.timezone, low, high, limit)
    return [_fated(slots, nominal) for nominal in found]


@dataclass(frozen=True, slots=True)
class _Nominal:
    wall: datetime
    instant: datetime | None
    second_pass: bool
    nominal_at: datetime
    engine_fires: bool
    """The engine has a slot at `nominal_at` for it (for a gap: at the gap's end)."""


def _instants(
    slots: SlotSet, zone: str, low: datetime, high: datetime, limit: int
) -> list[_Nominal]:
    """An interval's multiples of its period, or the one `run_at`: instants, DST aside."""
    found: list[_Nominal] = []
    instant = slots.raw.next_slot(low - _TICK)
    while instant is not None and instant < high:
        if len(found) == limit:
            raise TooManySlotsError(limit)
        local = instant.replace(tzinfo=UTC).astimezone(zone_named(zone))
        wall = local.replace(tzinfo=None, fold=0)
        found.append(_Nominal(wall, instant, bool(local.fold), instant, engine_fires=True))
        instant = slots.raw.next_slot(instant)
    return found


def _cron_nominals(
    expression: str, zone: str, low: datetime, high: datetime, limit: int
) -> list[_Nominal]:
    """Every wall time the expression matches whose instants (or gap end) lie in the range,
    each with whether the engine has a slot for it. The engine's slots are listed first, so
    each wall time's fate is a lookup."""
    engine, timeline = cron_engine(expression, zone), timeline_of(zone)
    fired: set[datetime] = set()
    slot = engine.next_slot(low - _TICK)
    while slot is not None and slot < high:
        if len(fired) > 2 * limit:
            raise TooManySlotsError(limit)
        fired.add(slot)
        slot = engine.next_slot(slot)
    changes = timeline.between(low - _AROUND, high + _AROUND)
    offsets = {timeline.offset_at(low), timeline.offset_at(high)}
    offsets |= {offset for change in changes for offset in (change.before, change.after)}
    calendar = WallCalendar(parse_cron(expression))
    found: list[_Nominal] = []
    wall = calendar.next_match((low + min(offsets)).replace(microsecond=0))
    while wall is not None and wall < high + max(offsets):
        instants = sorted({wall - o for o in offsets if timeline.offset_at(wall - o) == o})
        for second_pass, instant in enumerate(instants):
            if low <= instant < high:
                found.append(_Nominal(wall, instant, bool(second_pass), instant, instant in fired))
        gap = None if instants else next((c for c in changes if _in_gap(wall, c)), None)
        if gap is not None and low <= gap.at < high:
            found.append(_Nominal(wall, None, False, gap.at, engine.gap_slot(gap)))
        if len(found) > limit:
            raise TooManySlotsError(limit)
        wall = calendar.next_match(wall + _SECOND)
    found.sort(key=lambda nominal: (nominal.nominal_at, nominal.wall))
    return found


def _in_gap(wall: datetime, change: Transition) -> bool:
    return change.is_gap and change.at + change.before <= wall < change.at + change.after


def _fated(slots: SlotSet, nominal: _Nominal) -> NominalSlot:
    """The fate of one nominal slot: the engine's word on DST, then the bounds, the window
    and jitter, as `SlotSet` applies them."""
    at = nominal.nominal_at
    fate = Fate.FIRES if nominal.instant is not None else Fate.DST_GAP_MOVED
    if not nominal.engine_fires:
        fate = Fate.DST_FOLD_SKIPPED if nominal.instant is not None else Fate.DST_GAP_SKIPPED
    elif slots.start is not None and at < slots.start:
        fate = Fate.BEFORE_START
    elif slots.end is not None and at > slots.end:
        fate = Fate.AFTER_END
    elif slots.window is not None and not slots.window.contains(at):
        fate = Fate.OUTSIDE_ACTIVE_HOURS
    slot_at = slots.fired_at(at) if fate.fires else None
    moves: tuple[SlotMove, ...] = (SlotMove.DST_GAP,) if fate is Fate.DST_GAP_MOVED else ()
    if slot_at is not None and slot_at != at:
        moves += (SlotMove.JITTER,)
    return NominalSlot(
        wall=nominal.wall,
        instant=_aware(nominal.instant),
        second_pass=nominal.second_pass,
        fate=fate,
        nominal_at=at.replace(tzinfo=UTC),
        slot_at=_aware(slot_at),
        moves=moves,
    )


def slot_move(spec: SlotSpec, slot: datetime) -> tuple[datetime, tuple[SlotMove, ...]] | None:
    """For a slot of `spec` the ticker fires: its nominal instant and what moved it there, or
    None when it fires at the wall time it matches. Cheap unless the spec is jittered (one
    backward search) or the slot ends a DST gap."""
    nominal = _naive_utc(slot)
    moves: tuple[SlotMove, ...] = ()
    if spec.jitter_seconds:
        slots = SlotSet(spec)
        found = next(slots.nominal_newest_first(nominal - slots.jitter, nominal), None)
        if found is not None and found != nominal:
            nominal, moves = found, (SlotMove.JITTER,)
    if spec.cron_expression is not None:
        ends = timeline_of(spec.timezone).between(nominal - _TICK, nominal)
        gap_end = any(change.is_gap for change in ends)
        if gap_end and cron_engine(spec.cron_expression, spec.timezone).gap_slot(ends[0]):
            moves = (SlotMove.DST_GAP, *moves)
    return (nominal.replace(tzinfo=UTC), moves) if moves else None


def _aware(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.replace(tzinfo=UTC)


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)
