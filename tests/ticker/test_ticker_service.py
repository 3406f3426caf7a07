"""The ticker on a real nats-server: firing on a manual clock, catch-up, pause, the
lease between two tickers (one of them a process killed with SIGKILL), and triggers."""

import asyncio
import json
import os
import signal
import sys
from datetime import UTC, datetime, timedelta

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, NotFoundError

from natscron_shared.contract import names
from natscron_shared.contract.enums import Priority, ScheduledJobStatus
from natscron_shared.contract.job_ids import scheduled_job_run_id
from natscron_shared.contract.messages import RunRequest, ScheduleEvent
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.contract.pools import DEFAULT_POOL
from natscron_shared.contract.ticker_state import SlotState
from natscron_shared.nats.connection import to_json
from natscron_shared.nats.schedule_bucket import put_schedules
from natscron_shared.runtime.clock import ManualClock
from natscron_shared.runtime.endpoints import Endpoints
from natscron_shared.runtime.settings import Settings
from natscron_ticker import TickerService
from natscron_ticker.trigger import MAX_TRIGGER_BYTES
from tests.conftest import StartTicker
from tests.waiting import eventually

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 25, 12, 0, 0, 500_000, tzinfo=UTC)


def schedule(scheduled_job_id: str, **fields: object) -> ScheduledJob:
    values: dict[str, object] = {"name": scheduled_job_id, "scraper": "noop"}
    values.setdefault("cron_expression", "*/10 * * * * *")
    values.update(fields)
    return ScheduledJob.model_validate({"scheduled_job_id": scheduled_job_id, **values})


def sample(ticker: TickerService, name: str, **labels: str) -> float:
    """A metric as Prometheus would scrape it (0 when never touched)."""
    return ticker.registry.get_sample_value(name, labels) or 0.0


class JobQueue:
    """Takes run requests off the JOBS stream, as a runner would, and remembers them."""

    def __init__(self, js: JetStreamContext) -> None:
        self._js = js
        self.requests: list[RunRequest] = []

    async def take(self) -> list[RunRequest]:
        for priority in Priority:
            subscription = await self._js.pull_subscribe_bind(
                durable=names.runner_consumer(DEFAULT_POOL, priority), stream=names.STREAM_JOBS
            )
            try:
                for msg in await subscription.fetch(batch=1000, timeout=0.2):
                    self.requests.append(RunRequest.model_validate_json(msg.data))
                    await msg.ack()
            except TimeoutError:
                pass
            finally:
                await subscription.unsubscribe()
        return self.requests

    async def until(self, count: int, what: str) -> list[RunRequest]:
        return await eventually(self.take, lambda got: len(got) >= count, what=what)

    def of(self, scheduled_job_id: str) -> list[RunRequest]:
        return [r for r in self.requests if r.scheduled_job_id == scheduled_job_id]


async def slot_state(js: JetStreamContext, scheduled_job_id: str) -> SlotState | None:
    bucket = await js.key_value(names.KV_TICKER_STATE)
    try:
        entry = await bucket.get(scheduled_job_id)
    except KeyNotFoundError:
        return None
    return SlotState.from_json(entry.value or b"")


async def adopted(js: JetStreamContext, scheduled_job_id: str, active: bool = True) -> None:
    """Wait until the leader has taken the job's current status into account: it announces
    the next run time (none while paused) whenever it adopts a job."""

    async def announced() -> ScheduleEvent | None:
        subject = names.scheduled_job_event_subject(scheduled_job_id)
        try:
            message = await js.get_last_msg(names.STREAM_EVENTS, subject)
        except NotFoundError:
            return None
        return ScheduleEvent.model_validate_json(message.data or b"")

    await eventually(
        announced,
        lambda event: event is not None and (event.next_run_at is not None) == active,
        what=f"{scheduled_job_id} adopted",
    )


async def leading(ticker: TickerService) -> None:
    async def probe() -> bool:
        return ticker.is_leader

    await eventually(probe, what=f"ticker {ticker.ticker_id} leads")


async def leader_on_manual_clock(start_ticker: StartTicker) -> tuple[TickerService, ManualClock]:
    clock = ManualClock(T0)
    ticker = await start_ticker(clock)
    await leading(ticker)
    return ticker, clock


async def test_fires_each_slot_once_as_the_clock_moves(
    start_ticker: StartTicker, nc: Client
) -> None:
    ticker, clock = await leader_on_manual_clock(start_ticker)
    js = nc.jetstream()
    await put_schedules(js, [schedule("tick", params={"items": 2})])
    await adopted(js, "tick")
    queue = JobQueue(js)

    for step in range(1, 4):
        await clock.advance(timedelta(seconds=10))
        await queue.until(step, f"slot {step} published")

    slots = [T0.replace(microsecond=0) + timedelta(seconds=10 * n) for n in (1, 2, 3)]
    assert [r.scheduled_for for r in queue.requests] == slots
    assert [r.job_id for r in queue.requests] == [scheduled_job_run_id("tick", s) for s in slots]
    assert all(r.params == {"items": 2} and r.trigger == "scheduled" for r in queue.requests)
    state = await slot_state(js, "tick")
    assert state is not None and state.last_fired_slot == slots[-1]
    assert sample(ticker, "natscron_ticker_slots_fired_total") == 3


async def test_catches_up_after_downtime_per_policy_and_never_twice(
    start_ticker: StartTicker, nc: Client
) -> None:
    js = nc.jetstream()
    now = datetime(2026, 11, 25, 12, 0, 30, tzinfo=UTC)
    policies = {"all": 300.0, "latest": 300.0, "none": 10.0}
    state_bucket = await js.key_value(names.KV_TICKER_STATE)
    for policy in policies:
        away = SlotState(handled_until=now - timedelta(minutes=10))
        await state_bucket.put(f"c-{policy}", away.to_json())
    await put_schedules(
        js,
        [
            schedule(f"c-{p}", cron_expression="* * * * *", catchup=p, misfire_grace_seconds=g)
            for p, g in policies.items()
        ],
    )
    clock = ManualClock(now)
    first = await start_ticker(clock)
    queue = JobQueue(js)
    await queue.until(11, "catch-up runs")

    minute = now.replace(second=0)
    missed = [minute - timedelta(minutes=m) for m in range(9, -1, -1)]
    assert [r.scheduled_for for r in queue.of("c-all")] == missed
    assert [r.scheduled_for for r in queue.of("c-latest")] == [minute]
    assert queue.of("c-none") == []
    assert sample(first, "natscron_ticker_slots_skipped_total", kind="catchup_merged") == 9
    assert sample(first, "natscron_ticker_slots_skipped_total", kind="catchup_dropped") == 10

    await first.stop()
    second = await start_ticker(clock)
    await leading(second)
    await clock.move_to(minute + timedelta(minutes=1))
    await queue.until(14, "the next minute's runs")
    for policy in policies:
        assert queue.of(f"c-{policy}")[-1].scheduled_for == minute + timedelta(minutes=1)
    assert len({r.job_id for r in queue.requests}) == len(queue.requests) == 14


async def test_paused_job_does_not_fire_and_resumes_without_catching_up(
    start_ticker: StartTicker, nc: Client
) -> None:
    ticker, clock = await leader_on_manual_clock(start_ticker)
    js = nc.jetstream()
    job = schedule("pausable", catchup="all")
    await put_schedules(js, [job, schedule("heartbeat", cron_expression="* * * * *")])
    await adopted(js, "pausable")
    queue = JobQueue(js)
    await clock.advance(timedelta(seconds=10))
    await queue.until(1, "first run")

    await put_schedules(js, [job.model_copy(update={"status": ScheduledJobStatus.PAUSED})])
    await adopted(js, "pausable", active=False)
    await clock.move_to(T0 + timedelta(seconds=61))
    await queue.until(2, "the heartbeat run, while pausable is paused")
    assert [r.scheduled_job_id for r in queue.requests] == ["pausable", "heartbeat"]

    await put_schedules(js, [job])
    await adopted(js, "pausable")
    await clock.advance(timedelta(seconds=10))
    await queue.until(3, "one run after resuming")
    assert queue.requests[-1].scheduled_for == T0.replace(microsecond=0) + timedelta(seconds=70)
    assert len(queue.of("pausable")) == 2


async def test_a_bad_schedule_in_kv_is_counted_and_others_still_fire(
    start_ticker: StartTicker, nc: Client
) -> None:
    ticker, clock = await leader_on_manual_clock(start_ticker)
    js = nc.jetstream()
    bucket = await js.key_value(names.KV_SCHEDULED_JOBS)
    await bucket.put("broken", b'{"name": "no schedule"}')
    await bucket.put("mislabelled", to_json(schedule("other")))
    await put_schedules(js, [schedule("fine")])
    await adopted(js, "fine")
    await clock.advance(timedelta(seconds=10))
    requests = await JobQueue(js).until(1, "the good schedule fires")
    assert [r.scheduled_job_id for r in requests] == ["fine"]
    assert sample(ticker, "natscron_ticker_bad_schedules_total") == 2
    assert ticker.is_ready()


async def test_standby_takes_over_from_a_killed_leader_and_no_slot_is_stored_twice(
    start_ticker: StartTicker, nc: Client, settings: Settings, endpoints: Endpoints
) -> None:
    js = nc.jetstream()
    environment = {
        **os.environ,
        "NATSCRON_NATS_URL": endpoints.nats_url,
        "NATSCRON_MONGO_URL": endpoints.mongo_url,
        "NATSCRON_DATA_DIR": str(settings.data_dir),
        "NATSCRON_HTTP_HOST": "127.0.0.1",
        "NATSCRON_LEASE_TTL_SECONDS": str(settings.lease_ttl_seconds),
        "NATSCRON_TICKER_ID": "doomed",
    }
    doomed = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "natscron.cli.main", "ticker", env=environment
    )
    try:
        leases = await js.key_value(names.KV_TICKER_LEADER)

        async def holder() -> bytes | None:
            try:
                return (await leases.get(names.LEADER_KEY)).value
            except KeyNotFoundError:
                return None

        await eventually(holder, lambda h: h == b"doomed", within=30, what="subprocess leads")
        standby = await start_ticker(ticker_id="standby")
        await put_schedules(js, [schedule("failover", cron_expression="* * * * * *")])
        queue = JobQueue(js)
        await queue.until(3, "runs fired by the first leader")
        assert not standby.is_leader

        doomed.send_signal(signal.SIGKILL)
        await doomed.wait()
        killed_at = datetime.now(UTC)
        await leading(standby)
        await eventually(
            queue.take,
            lambda got: any(r.created_at > killed_at for r in got) and len(got) >= 6,
            what="runs fired by the new leader",
        )
    finally:
        if doomed.returncode is None:
            doomed.kill()
            await doomed.wait()
    await standby.stop()
    job_ids = [r.job_id for r in await queue.take()]
    assert len(job_ids) == len(set(job_ids)), "a slot was stored twice"
    info = await js.stream_info(names.STREAM_JOBS)
    assert info.state.messages == 0 and info.state.last_seq == len(job_ids)


async def test_triggers_answer_with_job_ids_and_errors(
    start_ticker: StartTicker, nc: Client
) -> None:
    ticker = await start_ticker(ManualClock(T0))
    js = nc.jetstream()
    await put_schedules(js, [schedule("sold_daily_indy", name="Daily Sold", status="paused")])

    async def ask(body: bytes) -> dict[str, object]:
        reply = await nc.request(names.JOBS_TRIGGER, body, timeout=10)
        answer: dict[str, object] = json.loads(reply.data)
        return answer

    paused = await ask(json.dumps({"job_id": "sold_daily_indy"}).encode())
    assert paused["error"] == {
        "code": "not_active",
        "message": "scheduled job 'sold_daily_indy' is paused; trigger it with force to run it"
        " once all the same (`natscron trigger --force`), or resume it",
    }
    forced = {"job_id": "sold_daily_indy", "priority": "immediate", "force": True}
    answer = await ask(json.dumps(forced).encode())
    assert answer["status"] == "pending"
    assert str(answer["job_id"]).startswith("triggered_sold_daily_indy_1795608000_")
    assert answer["message"] == (
        "Triggered scheduled job 'Daily Sold' to run immediately; it stays paused"
    )

    errors = {
        b"{not json": "malformed_json",
        b'{"scheduled_job_id": "nope"}': "unknown_scheduled_job",
        b'{"scheduled_job_id": "a.b"}': "invalid_request",
        b'{"scheduled_job_id": "x", "scraper": "noop"}': "invalid_request",
        b" " * (MAX_TRIGGER_BYTES + 1): "message_too_large",
    }
    for body, code in errors.items():
        error = (await ask(body))["error"]
        assert isinstance(error, dict) and error["code"] == code and error["message"]

    # No runner is up to advertise scrapers: the catalogue check has its own tests.
    adhoc = await ask(
        json.dumps({"scraper": "noop", "params": {"items": 1}, "unchecked": True}).encode()
    )
    await nc.publish(
        names.JOBS_TRIGGER,
        json.dumps({"scheduled_job_id": "sold_daily_indy", "force": True}).encode(),
    )
    requests = await JobQueue(js).until(3, "triggered, ad-hoc and fire-and-forget jobs")
    assert [r.trigger for r in requests] == ["triggered", "adhoc", "triggered"]
    assert requests[0].priority == "immediate" and requests[0].scheduled_for is None
    assert requests[1].job_id == adhoc["job_id"] and requests[1].scheduled_job_id is None

    def answered(outcome: str) -> float:
        return sample(
            ticker, "natscron_requests_total", endpoint=names.JOBS_TRIGGER, outcome=outcome
        )

    assert [answered(code) for code in ("malformed_json", "invalid_request", "not_active")] == [
        1,
        2,
        1,
    ]
    assert answered("ok") == 3
    assert ticker.is_ready()
