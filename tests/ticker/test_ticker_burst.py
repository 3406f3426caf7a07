"""The ticker under a burst, on a real nats-server: many schedules due at one instant,
and publications JetStream refuses (a run subject taken out of the JOBS stream)."""

from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import TypeVar

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext

from natscron_shared.contract import names
from natscron_shared.contract.enums import Priority
from natscron_shared.contract.job_ids import scheduled_job_run_id
from natscron_shared.contract.messages import RunRequest
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.contract.pools import DEFAULT_POOL
from natscron_shared.contract.ticker_state import SlotState
from natscron_shared.nats.kv_watch import current_values
from natscron_shared.nats.schedule_bucket import put_schedules
from natscron_shared.runtime.clock import ManualClock
from natscron_shared.runtime.endpoints import Endpoints
from natscron_shared.runtime.settings import Settings
from natscron_ticker import TickerService
from tests.ticker.test_ticker_service import T0, leading, sample, schedule
from tests.waiting import eventually

pytestmark = pytest.mark.integration

Leader = tuple[TickerService, ManualClock]
States = dict[str, SlotState]
T = TypeVar("T")
MINUTELY = "0 * * * * *"


@pytest.fixture
async def leader(settings: Settings, endpoints: Endpoints) -> AsyncIterator[Leader]:
    clock = ManualClock(T0)
    ticker = TickerService(settings, endpoints, clock=clock)
    await ticker.start()
    try:
        await leading(ticker)
        yield ticker, clock
    finally:
        await ticker.stop()


async def saved_states(js: JetStreamContext) -> States:
    values = await current_values(await js.key_value(names.KV_TICKER_STATE))
    return {key: SlotState.from_json(value) for key, value in values.items()}


async def announced(js: JetStreamContext) -> set[str]:
    """The jobs whose next run time the leader announced: those it has adopted."""
    filter_ = f"{names.SCHEDULED_JOBS_EVENTS_PREFIX}.>"
    info = await js.stream_info(names.STREAM_EVENTS, subjects_filter=filter_)
    prefix = len(names.SCHEDULED_JOBS_EVENTS_PREFIX) + 1
    return {subject[prefix:] for subject in info.state.subjects or {}}


def states_of(js: JetStreamContext) -> Callable[[], Awaitable[States]]:
    async def probe() -> States:
        return await saved_states(js)

    return probe


async def stored_in_order(js: JetStreamContext) -> list[RunRequest]:
    """Every run request in JOBS, taken off both lanes, in the order JetStream stored them."""
    stored: list[tuple[int, RunRequest]] = []
    for priority in Priority:
        lane = await js.pull_subscribe_bind(
            durable=names.runner_consumer(DEFAULT_POOL, priority), stream=names.STREAM_JOBS
        )
        try:
            for msg in await lane.fetch(batch=10_000, timeout=1):
                stored.append(
                    (msg.metadata.sequence.stream, RunRequest.model_validate_json(msg.data))
                )
                await msg.ack()
        except TimeoutError:
            pass
        finally:
            await lane.unsubscribe()
    return [request for _, request in sorted(stored, key=lambda pair: pair[0])]


async def serve_run_subjects(js: JetStreamContext, *priorities: Priority) -> None:
    """Make JOBS take only these lanes: a run request on another one finds no stream."""
    config = (await js.stream_info(names.STREAM_JOBS)).config
    config.subjects = [names.run_subject(DEFAULT_POOL, priority) for priority in priorities]
    await js.update_stream(config)


async def test_a_burst_due_at_one_instant_is_published_once_each_immediate_first(
    leader: Leader, nc: Client
) -> None:
    ticker, clock = leader
    js = nc.jetstream()
    count = 300
    specs = [
        schedule(
            f"burst-{n:03d}",
            cron_expression=MINUTELY,
            priority="immediate" if n % 3 == 0 else "normal",
        )
        for n in range(count)
    ]
    await put_schedules(js, specs)
    await eventually(lambda: announced(js), lambda ids: len(ids) == count, what="all adopted")

    slot = T0.replace(second=0, microsecond=0) + timedelta(minutes=1)
    await clock.move_to(slot)
    await eventually(
        states_of(js),
        lambda states: all(state.last_fired_slot == slot for state in states.values()),
        what="every schedule's state saved",
    )

    stored = await stored_in_order(js)
    expected = {scheduled_job_run_id(spec.scheduled_job_id, slot) for spec in specs}
    assert sorted(r.job_id for r in stored) == sorted(expected)
    lanes = [request.priority for request in stored]
    assert lanes == sorted(lanes, key=lambda priority: priority is Priority.NORMAL)
    assert sample(ticker, "natscron_ticker_slots_fired_total") == count
    assert sample(ticker, "natscron_ticker_nats_errors_total", operation="publish") == 0


async def test_a_refused_publish_is_retried_and_its_state_saved_only_once_acked(
    leader: Leader, nc: Client
) -> None:
    ticker, clock = leader
    js = nc.jetstream()
    urgent = [
        schedule(f"urgent-{n}", cron_expression=MINUTELY, priority="immediate") for n in range(40)
    ]
    calm = [schedule(f"calm-{n}", cron_expression=MINUTELY) for n in range(40)]
    await put_schedules(js, urgent + calm)
    adopted = await eventually(states_of(js), lambda states: len(states) == 80, what="adopted")
    first = T0.replace(second=0, microsecond=0) + timedelta(minutes=1)
    second = first + timedelta(minutes=1)

    async def failures() -> float:
        return sample(ticker, "natscron_ticker_nats_errors_total", operation="publish")

    await serve_run_subjects(js, Priority.NORMAL)
    await clock.move_to(first)
    await eventually(states_of(js), lambda states: fired(states, calm, first), what="calm saved")
    await eventually_advancing(
        clock, second, failures, lambda count: count >= 2 * len(urgent), "urgent refused twice"
    )
    states = await saved_states(js)
    assert all(states[spec.scheduled_job_id] == adopted[spec.scheduled_job_id] for spec in urgent)

    await serve_run_subjects(js, Priority.IMMEDIATE, Priority.NORMAL)
    await eventually_advancing(
        clock, second, states_of(js), lambda states: fired(states, urgent, first), "urgent retried"
    )
    await clock.move_to(second)
    await eventually(
        states_of(js), lambda states: fired(states, urgent + calm, second), what="next slots"
    )

    stored = await stored_in_order(js)
    expected = [
        scheduled_job_run_id(spec.scheduled_job_id, slot)
        for spec in urgent + calm
        for slot in (first, second)
    ]
    assert Counter(request.job_id for request in stored) == Counter(expected)
    info = await js.stream_info(names.STREAM_JOBS)
    assert info.state.last_seq == len(expected), "a slot was stored twice"


def fired(states: States, specs: list[ScheduledJob], slot: datetime) -> bool:
    saved = [states.get(spec.scheduled_job_id) for spec in specs]
    return all(state is not None and state.last_fired_slot == slot for state in saved)


async def eventually_advancing(
    clock: ManualClock,
    limit: datetime,
    probe: Callable[[], Awaitable[T]],
    until: Callable[[T], bool],
    what: str,
) -> T:
    """`eventually`, moving the clock a second after each look that fails, so that
    retries come, but never to `limit`: the next slot would make catch-up skip one."""

    async def look() -> T:
        value = await probe()
        if not until(value) and clock.now() + timedelta(seconds=1) < limit:
            await clock.advance(timedelta(seconds=1))
        return value

    return await eventually(look, until, what=what)
