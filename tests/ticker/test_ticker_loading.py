"""The ticker at scale: its compact schedule book, its state table, and firing while the
book still loads (the large figures are benchmarks: bench/scale.py)."""

import asyncio
import gc
from datetime import UTC, datetime, timedelta

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from prometheus_client import CollectorRegistry

from natscron_shared.contract.models import ScheduledJob
from natscron_shared.contract.ticker_state import SlotState
from natscron_shared.runtime.clock import ManualClock
from natscron_shared.timing.schedule import next_fire_after
from natscron_ticker.book import ScheduleBook
from natscron_ticker.metrics import TickerMetrics
from natscron_ticker.operations import PrepareCost
from natscron_ticker.scheduler import Scheduler
from natscron_ticker.state import StateTable
from natscron_ticker.state_mirror import StateMirror
from natscron_ticker.watch import ScheduleFollower, ack_fields
from tests.ticker.ticker_fakes import MemoryStore, RecordingPublisher
from tests.waiting import eventually

T0 = datetime(2026, 11, 25, 12, 0, 0, 500_000, tzinfo=UTC)


def every_second(scheduled_job_id: str, **fields: object) -> ScheduledJob:
    return ScheduledJob.model_validate(
        {
            "scheduled_job_id": scheduled_job_id,
            "name": scheduled_job_id,
            "cron_expression": "* * * * * *",
            "scraper": "noop",
            **fields,
        }
    )


def test_the_book_gives_back_every_field_of_a_spec_it_no_longer_keeps_parsed() -> None:
    book = ScheduleBook(parsed_specs=1)
    full = every_second(
        "full",
        priority="immediate",
        params={"url": "https://example.com", "depth": [1, 2]},
        labels={"team": "sold"},
        timezone="Europe/Berlin",
        start_at="2026-11-25T13:00:00+01:00",
        jitter_seconds=0.25,
        max_runs=3,
        webhooks=[{"url": "https://hooks.example.com/x", "on": ["failed"]}],
    )
    book.put(full, T0.timestamp())
    book.put(every_second("other"))  # pushes `full` out of the parsed specs
    assert book.get("full") == full
    assert book.get("full") is book.get("full")  # parsed once, then kept
    assert book.put_at("full") == T0
    assert book.put_at("other") is None
    assert str(book.priority("full")) == "immediate"
    assert book.get("missing") is None and book.priority("missing") is None


def test_specs_put_while_loading_arrive_while_collected_and_later_ones_are_changes() -> None:
    book = ScheduleBook()
    book.put(every_second("before"))  # nobody collects yet: only filed
    assert not book.changes.is_set()
    book.collect_arrivals(True)
    a, b = every_second("a"), every_second("b")
    book.put(a)
    book.put(b)
    assert book.changes.is_set()
    assert book.take_changes() == set()
    assert book.changes.is_set(), "arrivals are still waiting"
    assert book.take_arrivals() == [a, b]
    assert not book.changes.is_set()
    book.put(every_second("c"))
    book.collect_arrivals(False)
    assert book.take_arrivals() == []

    book.loaded.set()
    book.put(every_second("a", description="changed"))
    book.remove("b")
    assert book.take_arrivals() == []
    assert book.take_changes() == {"a", "b"}
    assert book.ids() == ["before", "a", "c"] and "b" not in book


def test_the_state_table_keeps_states_out_of_the_garbage_collectors_walk() -> None:
    table = StateTable()
    state = SlotState(T0, T0 - timedelta(seconds=1), True, 2, 5)
    table["a"] = state
    assert table.get("a") == state and table["a"] == state and len(table) == 1
    gc.collect()
    rows = [row for row in gc.get_referents(table) if isinstance(row, dict)]
    assert rows and not any(gc.is_tracked(row) for row in rows[0].values())
    assert table.pop("a") == state and table.get("a") is None and table.pop("a") is None


def test_the_mirror_leaves_the_states_to_the_leader_while_it_leads() -> None:
    mirror = StateMirror()
    mirror.put("a", SlotState(T0))
    owned = mirror.take()
    owned["a"] = SlotState(T0 + timedelta(seconds=5))
    mirror.put("a", SlotState(T0 + timedelta(seconds=1)))  # the echo of an older write
    mirror.drop("a")
    assert mirror.get("a") == SlotState(T0 + timedelta(seconds=5))
    mirror.give_back()
    mirror.put("a", SlotState(T0 + timedelta(seconds=5)))
    mirror.put("b", SlotState(T0))
    assert mirror.get("a") == SlotState(T0 + timedelta(seconds=5)) and len(mirror) == 2


class HeldLease:
    """A lease this ticker holds throughout."""

    def __init__(self) -> None:
        self.leading = asyncio.Event()
        self.leading.set()
        self.standing_by = asyncio.Event()

    @property
    def is_leader(self) -> bool:
        return True


async def test_the_leader_fires_while_the_book_is_still_loading() -> None:
    book, states = ScheduleBook(), StateMirror()
    states.loaded.set()
    book.put(every_second("early"), T0.timestamp())
    publisher, store, registry = RecordingPublisher(), MemoryStore(), CollectorRegistry()
    clock = ManualClock(T0)
    scheduler = Scheduler(
        book,
        HeldLease(),
        states,
        store,
        publisher,
        clock,
        TickerMetrics.on(registry),
        last_run=lambda _: None,
    )
    running = asyncio.create_task(scheduler.run())

    async def fired(scheduled_job_id: str) -> list[datetime | None]:
        await clock.advance(timedelta(milliseconds=100))
        requests = publisher.requests
        return [r.scheduled_for for r in requests if r.scheduled_job_id == scheduled_job_id]

    try:
        first = next_fire_after(every_second("early"), T0)
        assert await eventually(lambda: fired("early"), within=10) == [first]
        assert not book.loaded.is_set()
        assert registry.get_sample_value("natscron_ticker_takeovers_total") == 0

        book.put(every_second("late"), clock.now().timestamp())
        yearly = every_second("yearly", cron_expression="0 0 1 1 *")
        book.put(yearly, clock.now().timestamp())
        assert await eventually(lambda: fired("late"), within=10)
        assert "yearly" not in store.saved
        # The last spec arrives with the end of loading: it is settled too, at once.
        book.put(every_second("monthly", cron_expression="0 0 1 * *"), clock.now().timestamp())
        book.loaded.set()

        async def settled() -> list[str]:
            await asyncio.sleep(0)
            return sorted(store.saved)

        # Once loaded, the takeover is over: a new job that has not fired yet is settled
        # (its state saved, its next run announced).
        assert await eventually(settled, lambda ids: {"monthly", "yearly"} <= set(ids), within=10)
        assert registry.get_sample_value("natscron_ticker_takeovers_total") == 1
        (announced,) = [e for e in publisher.announced if e.scheduled_job_id == "yearly"]
        assert announced.next_run_at == next_fire_after(yearly, clock.now())
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


def test_a_delivery_is_read_from_either_form_of_its_ack_subject() -> None:
    stamp = 1_764_100_000_123_456_789
    short = f"$JS.ACK.KV_scheduled_jobs.con.1.42.7.{stamp}.5"
    long = f"$JS.ACK.hub.ACCHASH.KV_scheduled_jobs.con.1.42.7.{stamp}.5.token"
    for reply in (short, long):
        revision, stored_at, pending = ack_fields(reply)
        assert (revision, pending) == (42, 5)
        assert abs(stored_at - stamp / 1e9) < 1e-6


def test_the_prepare_cost_rises_at_once_and_falls_slowly() -> None:
    cost = PrepareCost(60e-6)
    cost.observe(10, 10 * 500e-6)  # too few jobs to count
    assert cost.seconds_per_job == 60e-6
    cost.observe(1_000, 1_000 * 100e-6)
    assert cost.seconds_per_job == 100e-6
    cost.observe(1_000, 1_000 * 20e-6)
    assert 20e-6 < cost.seconds_per_job < 100e-6
    assert abs(cost.seconds_per_job - (0.9 * 100e-6 + 0.1 * 20e-6)) < 1e-12


async def test_a_delivery_that_cannot_be_applied_fails_the_watch_rather_than_vanish() -> None:
    registry = CollectorRegistry()
    follower = ScheduleFollower(ScheduleBook(), TickerMetrics.on(registry))
    unreadable = Msg(_client=Client(), subject="$KV.scheduled_jobs.x", reply="not-an-ack")
    await follower.on_message(unreadable)
    with pytest.raises(IndexError):
        await follower.failed
