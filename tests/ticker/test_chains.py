"""Chains through a running ticker and runner on a real nats-server: a child runs after its
parent's runs that end as its `on` says (success, failure, completion), after all of its
parents (fan-in), and not while it is paused. The parents' runs end when the test says
(`Gate`); the children run the `noop` scraper."""

from collections import Counter
from typing import Any

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext

from natscron_shared.contract import names
from natscron_shared.contract.chains import ParentFinish
from natscron_shared.contract.decisions import Decision, DecisionKind
from natscron_shared.contract.enums import JobStatus, Trigger
from natscron_shared.contract.job_ids import scheduled_job_run_id
from natscron_shared.contract.messages import JobEvent, RunRequest
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.nats.schedule_bucket import pause, put_schedules, resume
from natscron_shared.runtime.clock import ManualClock
from natscron_ticker import TickerService
from tests.conftest import StartTicker
from tests.stack import publish
from tests.ticker.test_last_run import Gate, runner_on  # noqa: F401 (a fixture)
from tests.ticker.test_ticker_service import T0, JobQueue, leading, sample, schedule
from tests.waiting import eventually

pytestmark = pytest.mark.integration

EVERY_TEN_SECONDS = "*/10 * * * * *"
SLOTS = [T0.replace(microsecond=0).replace(second=10 * n) for n in (1, 2, 3)]


def parent(scheduled_job_id: str) -> ScheduledJob:
    return schedule(scheduled_job_id, cron_expression=EVERY_TEN_SECONDS, scraper="gate")


def child(scheduled_job_id: str, *after: tuple[str, str], **fields: Any) -> ScheduledJob:
    links = [{"scheduled_job_id": p, "on": on} for p, on in after]
    return schedule(scheduled_job_id, cron_expression=None, after=links, **fields)


async def chained_runs(js: JetStreamContext, child_id: str) -> list[RunRequest]:
    """Every run of `child_id` EVENTS holds (its first event each), oldest first."""
    subscription = await js.subscribe("jobs.events.>", ordered_consumer=True)
    runs: dict[str, RunRequest] = {}
    try:
        while True:
            try:
                msg = await subscription.next_msg(timeout=0.3)
            except TimeoutError:
                break
            request = JobEvent.model_validate_json(msg.data).job
            if request.scheduled_job_id == child_id:
                runs.setdefault(request.job_id, request)
    finally:
        await subscription.unsubscribe()
    return list(runs.values())


async def decided(ticker: TickerService, count: int) -> None:
    """Wait until the leader has decided on `count` parent finishes (per child)."""

    async def probe() -> float:
        return sum(
            sample(ticker, "natscron_ticker_chain_decisions_total", decision=kind)
            for kind in ("fired", "held", "dropped")
        )

    await eventually(probe, lambda got: got >= count, what=f"{count} chain decisions")


async def chained_stack(
    start_ticker: StartTicker, start_runner: Any, nc: Client, *specs: ScheduledJob
) -> tuple[TickerService, ManualClock, Gate]:
    clock, gate = ManualClock(T0), Gate()
    ticker = await start_ticker(clock)
    await leading(ticker)
    await start_runner(clock, gate)
    await put_schedules(nc.jetstream(), list(specs))

    async def linked() -> bool:
        return all(s.scheduled_job_id in ticker.book for s in specs)

    await eventually(linked, what="the schedules in the book")
    return ticker, clock, gate


def run_of(parent_id: str, slot_index: int) -> str:
    return scheduled_job_run_id(parent_id, SLOTS[slot_index])


@pytest.mark.parametrize(
    ("on", "chained_after"),
    [("success", [0]), ("failure", [1]), ("completion", [0, 1])],
)
async def test_a_child_runs_once_after_each_parent_run_that_ends_as_it_asks(
    start_ticker: StartTicker,
    runner_on: Any,  # noqa: F811
    nc: Client,
    on: str,
    chained_after: list[int],
) -> None:
    js = nc.jetstream()
    ticker, clock, gate = await chained_stack(
        start_ticker, runner_on, nc, parent("a"), child("b", ("a", on))
    )
    for index, ok in enumerate((True, False)):  # the first run completes, the second fails
        await clock.move_to(SLOTS[index])
        await gate.until_started(index + 1)
        gate.end(run_of("a", index), ok=ok)
        await decided(ticker, index + 1)

    runs = await eventually(
        lambda: chained_runs(js, "b"), lambda got: len(got) >= len(chained_after), what="b runs"
    )
    assert [r.chained_from for r in runs] == [[run_of("a", i)] for i in chained_after]
    assert {r.trigger for r in runs} == {Trigger.CHAIN}
    assert sample(ticker, "natscron_ticker_chain_decisions_total", decision="fired") == len(
        chained_after
    )
    assert sample(ticker, "natscron_ticker_chain_decisions_total", decision="held") == 2 - len(
        chained_after
    )
    assert len(await chained_runs(js, "b")) == len(chained_after)


async def test_fan_in_runs_the_child_once_every_parent_ran_since_its_last_chained_run(
    start_ticker: StartTicker,
    runner_on: Any,  # noqa: F811
    nc: Client,
) -> None:
    js = nc.jetstream()
    ticker, clock, gate = await chained_stack(
        start_ticker,
        runner_on,
        nc,
        parent("a"),
        parent("b"),
        child("c", ("a", "success"), ("b", "success")),
    )
    endings = [(("a", True), ("b", True)), (("a", True), ("b", False)), (("a", True), ("b", True))]
    finishes = 0
    for index, ends in enumerate(endings):
        await clock.move_to(SLOTS[index])
        await gate.until_started(2 * (index + 1))
        for parent_id, ok in ends:
            gate.end(run_of(parent_id, index), ok=ok)
            finishes += 1
            await decided(ticker, finishes)

    runs = await eventually(
        lambda: chained_runs(js, "c"), lambda got: len(got) >= 2, what="two c runs"
    )
    assert [r.chained_from for r in runs] == [
        [run_of("a", 0), run_of("b", 0)],
        [run_of("a", 2), run_of("b", 2)],
    ]
    decisions = Counter(
        {
            kind: sample(ticker, "natscron_ticker_chain_decisions_total", decision=kind)
            for kind in ("fired", "held")
        }
    )
    assert decisions == Counter(fired=2, held=4)
    assert len(await chained_runs(js, "c")) == 2


async def test_a_paused_child_drops_its_chained_runs_and_runs_again_once_resumed(
    start_ticker: StartTicker,
    runner_on: Any,  # noqa: F811
    nc: Client,
) -> None:
    js = nc.jetstream()
    ticker, clock, gate = await chained_stack(
        start_ticker, runner_on, nc, parent("a"), child("b", ("a", "success"))
    )
    bucket = await js.key_value("scheduled_jobs")
    await pause(bucket, ["b"], "maintenance", clock.now())

    async def paused_in_book() -> bool:
        spec = ticker.book.get("b")
        return spec is not None and spec.status.value == "paused"

    await eventually(paused_in_book, what="b paused in the book")
    await clock.move_to(SLOTS[0])
    await gate.until_started(1)
    gate.end(run_of("a", 0), ok=True)
    await decided(ticker, 1)
    assert sample(ticker, "natscron_ticker_chain_decisions_total", decision="dropped") == 1

    await resume(bucket, ["b"])

    async def active_in_book() -> bool:
        spec = ticker.book.get("b")
        return spec is not None and spec.status.value == "active"

    await eventually(active_in_book, what="b active in the book")
    await clock.move_to(SLOTS[1])
    await gate.until_started(2)
    gate.end(run_of("a", 1), ok=True)
    runs = await eventually(lambda: chained_runs(js, "b"), lambda got: len(got) >= 1, what="b")
    assert [r.chained_from for r in runs] == [[run_of("a", 1)]]
    assert sample(ticker, "natscron_ticker_chain_decisions_total", decision="fired") == 1


async def test_runs_of_a_parent_carry_the_flag_and_others_do_not(
    start_ticker: StartTicker,
    runner_on: Any,  # noqa: F811
    nc: Client,
) -> None:
    """Only the runs of a schedule something runs after ask the runner for their end."""
    js = nc.jetstream()
    ticker, clock, gate = await chained_stack(
        start_ticker, runner_on, nc, parent("a"), parent("alone"), child("b", ("a", "success"))
    )
    await clock.move_to(SLOTS[0])
    await gate.until_started(2)
    flags = {
        request.scheduled_job_id: request.chain_parent
        for scheduled_job_id in ("a", "alone")
        for request in await chained_runs(js, scheduled_job_id)
    }
    assert flags == {"a": True, "alone": False}


async def test_a_finish_delivered_twice_starts_the_child_once(
    start_ticker: StartTicker, nc: Client
) -> None:
    """The same parent run announced again past the duplicate window (a new msg id, a new
    sequence in CHAINS), as a runner that ran it again would: no second child run."""
    js = nc.jetstream()
    ticker = await start_ticker(ManualClock(T0))
    await leading(ticker)
    await put_schedules(js, [parent("a"), child("b", ("a", "success"))])
    await eventually(lambda: _holds(ticker, "b"), what="b in the book")
    finish = ParentFinish(
        scheduled_job_id="a",
        job_id="triggered_a_1_abcdef",
        trigger=Trigger.TRIGGERED,
        status=JobStatus.COMPLETED,
        finished_at=T0,
    )
    for msg_id in ("first", "again"):
        await publish(js, names.chain_finished_subject("a"), finish, msg_id)

    async def drained() -> int:
        info = await js.consumer_info(names.STREAM_CHAINS, names.CHAINS_CONSUMER)
        return (info.num_pending or 0) + (info.num_ack_pending or 0)

    await eventually(drained, lambda left: left == 0, what="both finishes handled")
    requests = await JobQueue(js).take()
    assert [(r.scheduled_job_id, r.chained_from) for r in requests] == [
        ("b", ["triggered_a_1_abcdef"])
    ]
    assert sample(ticker, "natscron_ticker_chain_runs_total") == 1
    # Its decision was published twice, once stored: the same record, the same msg id.
    assert sample(ticker, "natscron_ticker_decisions_total", kind="chain_fired") == 2
    (record,) = await decision_records(js, "b")
    assert (record.kind, record.cause_job_id) == (DecisionKind.CHAIN_FIRED, finish.job_id)
    assert record.job_id == requests[0].job_id


async def decision_records(js: JetStreamContext, scheduled_job_id: str) -> list[Decision]:
    """Every decision record about `scheduled_job_id` DECISIONS holds, oldest first."""
    subscription = await js.subscribe(
        names.decision_subject(scheduled_job_id), ordered_consumer=True
    )
    records = []
    try:
        while True:
            try:
                msg = await subscription.next_msg(timeout=0.3)
            except TimeoutError:
                break
            records.append(Decision.model_validate_json(msg.data))
    finally:
        await subscription.unsubscribe()
    return records


async def _holds(ticker: TickerService, scheduled_job_id: str) -> bool:
    return scheduled_job_id in ticker.book
