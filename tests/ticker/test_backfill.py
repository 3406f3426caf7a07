"""`jobs.backfill` on real servers: a ticker publishes a schedule's past slots that never ran,
each once, with the ids and msg ids of normal fires, and the recorder stores them."""

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from pymongo.asynchronous.database import AsyncDatabase

from natscron_recorder import RecorderService
from natscron_shared.contract import names
from natscron_shared.contract.backfill import MAX_BACKFILL_SLOTS, BackfillReply
from natscron_shared.contract.enums import JobStatus
from natscron_shared.contract.job_ids import scheduled_job_run_id
from natscron_shared.contract.messages import RunRequest, ScheduleEvent
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.contract.storage import Document
from natscron_shared.nats.job_events import last_job_event
from natscron_shared.nats.schedule_bucket import put_schedules
from natscron_shared.runtime.clock import ManualClock
from natscron_shared.runtime.endpoints import Endpoints
from natscron_shared.runtime.settings import Settings
from natscron_ticker import TickerService
from tests.conftest import StartTicker
from tests.timing.cron_reference import reference_slots
from tests.waiting import eventually

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)
"""Two days after New York's fall-back change (2026-11-01, 02:00 EDT -> 01:00 EST)."""
TICK = timedelta(microseconds=1)


def schedule(scheduled_job_id: str, **fields: object) -> ScheduledJob:
    values: dict[str, object] = {"name": scheduled_job_id, "scraper": "noop"}
    values.setdefault("cron_expression", "*/10 * * * * *")
    values.update(fields)
    return ScheduledJob.model_validate({"scheduled_job_id": scheduled_job_id, **values})


def sample(ticker: TickerService, name: str, **labels: str) -> float:
    return ticker.registry.get_sample_value(name, labels) or 0.0


def answered(ticker: TickerService, subject: str, outcome: str) -> float:
    return sample(ticker, "natscron_requests_total", endpoint=subject, outcome=outcome)


async def ask(nc: Client, body: dict[str, Any] | bytes) -> dict[str, Any]:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    reply = await nc.request(names.JOBS_BACKFILL, payload, timeout=10)
    answer: dict[str, Any] = json.loads(reply.data)
    return answer


def backfill(scheduled_job_id: str, start: datetime, end: datetime, **more: Any) -> dict[str, Any]:
    return {
        "scheduled_job_id": scheduled_job_id,
        "start": start.isoformat(),
        "end": end.isoformat(),
        **more,
    }


async def queued(js: JetStreamContext) -> list[RunRequest]:
    """Every run request JOBS holds, in order, left in place."""
    state = (await js.stream_info(names.STREAM_JOBS)).state
    return [
        RunRequest.model_validate_json((await js.get_msg(names.STREAM_JOBS, seq)).data or b"")
        for seq in range(state.first_seq, state.last_seq + 1)
        if state.messages
    ]


async def ticker_on(start_ticker: StartTicker, now: datetime = NOW) -> TickerService:
    return await start_ticker(ManualClock(now))


async def test_publishes_the_slots_of_the_range_across_a_dst_change(
    start_ticker: StartTicker, nc: Client
) -> None:
    ticker = await ticker_on(start_ticker)
    js = nc.jetstream()
    spec = schedule(
        "ny", cron_expression="0,30 1-2 * * *", timezone="America/New_York", priority="immediate"
    )
    await put_schedules(js, [spec])
    start = datetime(2026, 10, 31, 5, 0, tzinfo=UTC)  # 01:00 EDT, a slot: included
    end = datetime(2026, 11, 2, 7, 30, tzinfo=UTC)  # 02:30 EST, a slot: included

    answer = BackfillReply.model_validate(await ask(nc, backfill("ny", start, end)))

    expected = reference_slots(spec, start - TICK, end)
    assert answer.slots == expected
    # The fold: 01:00 and 01:30 once (the EDT pass, a fixed-time entry), then 02:00 and 02:30 EST.
    change_day = [slot for slot in expected if slot.date() == datetime(2026, 11, 1).date()]
    assert [s.strftime("%H:%M") for s in change_day] == ["05:00", "05:30", "07:00", "07:30"]
    assert len(expected) == 12 and expected[0] == start and expected[-1] == end
    assert (answer.published, answer.skipped_existing, answer.dry_run) == (12, 0, False)
    requests = await queued(js)
    assert [r.scheduled_for for r in requests] == expected
    assert [r.job_id for r in requests] == [scheduled_job_run_id("ny", s) for s in expected]
    assert {(r.trigger, r.scheduled_job_id, r.created_at, r.priority) for r in requests} == {
        ("backfill", "ny", NOW, "normal")
    }
    for request in requests:
        event = await last_job_event(js, request.job_id)
        assert event is not None and event.status is JobStatus.PENDING

    assert answer.existing == []
    again = BackfillReply.model_validate(await ask(nc, backfill("ny", start, end)))
    assert (again.slots, again.published, again.skipped_existing) == (expected, 0, 12)
    assert again.existing == expected
    assert len(await queued(js)) == 12
    assert answered(ticker, names.JOBS_BACKFILL, "ok") == 2
    assert sample(ticker, "natscron_ticker_backfill_slots_total", result="published") == 12
    assert sample(ticker, "natscron_ticker_backfill_slots_total", result="existing") == 12


async def test_skips_the_slots_the_ticker_fired(start_ticker: StartTicker, nc: Client) -> None:
    clock = ManualClock(NOW)
    ticker = await start_ticker(clock)
    await eventually(lambda: _leads(ticker), what="the ticker leads")
    js = nc.jetstream()
    await put_schedules(js, [schedule("tick")])
    fired = [NOW + timedelta(seconds=10 * n) for n in (1, 2, 3)]
    for step, slot in enumerate(fired, 1):
        await eventually(partial(_announced, js, "tick", slot), what=f"next run {slot}")
        await clock.advance(timedelta(seconds=10))
        await eventually(partial(queued, js), partial(_holds, step), what=f"fire {step}")
    for slot in fired:
        job_id = scheduled_job_run_id("tick", slot)
        await eventually(partial(last_job_event, js, job_id), what=f"pending event of {job_id}")

    answer = BackfillReply.model_validate(
        await ask(nc, backfill("tick", NOW - timedelta(minutes=1), clock.now()))
    )

    slots = [NOW + timedelta(seconds=10 * n) for n in range(-6, 4)]
    assert answer.slots == slots
    assert (answer.published, answer.skipped_existing) == (7, 3)
    assert answer.existing == fired
    requests = await queued(js)
    assert [r.trigger for r in requests] == ["scheduled"] * 3 + ["backfill"] * 7
    assert [r.scheduled_for for r in requests[3:]] == slots[:7]


async def test_a_dry_run_publishes_nothing(start_ticker: StartTicker, nc: Client) -> None:
    ticker = await ticker_on(start_ticker)
    js = nc.jetstream()
    await put_schedules(js, [schedule("hourly", cron_expression="0 * * * *")])

    answer = BackfillReply.model_validate(
        await ask(nc, backfill("hourly", NOW - timedelta(hours=3), NOW, dry_run=True))
    )

    assert answer.slots == [NOW - timedelta(hours=n) for n in (3, 2, 1, 0)]
    assert (answer.published, answer.skipped_existing, answer.dry_run) == (0, 0, True)
    assert answer.message.startswith("Dry run: 4 of 4 slots of 'hourly' would be published")
    assert await queued(js) == []
    assert await last_job_event(js, scheduled_job_run_id("hourly", NOW)) is None
    assert sample(ticker, "natscron_ticker_backfill_slots_total", result="published") == 0
    assert answered(ticker, names.JOBS_BACKFILL, "ok") == 1


async def test_refusals_answer_with_a_sentence_and_publish_nothing(
    start_ticker: StartTicker, nc: Client
) -> None:
    ticker = await ticker_on(start_ticker)
    js = nc.jetstream()
    await put_schedules(
        js,
        [
            schedule("secs"),
            schedule("held", cron_expression="0 * * * *", status="paused"),
            schedule("excl", cron_expression="0 * * * *", concurrency_policy="forbid"),
            schedule("after", cron_expression=None, interval={"minutes": 1, "from": "last_run"}),
        ],
    )
    hour_ago = NOW - timedelta(hours=1)
    too_wide = NOW - timedelta(seconds=10 * MAX_BACKFILL_SLOTS)  # 1,001 slots, both ends in
    refusals = {
        "unknown_scheduled_job": backfill("nope", hour_ago, NOW),
        "invalid_range": backfill("secs", hour_ago, NOW + timedelta(seconds=1)),
        "invalid_request": backfill("secs", NOW, NOW),
        "too_many_slots": backfill("secs", too_wide, NOW),
        "not_active": backfill("held", hour_ago, NOW),
        "overlap_policy": backfill("excl", hour_ago, NOW),
        "bad_request": backfill("after", hour_ago, NOW),
    }
    for code, body in refusals.items():
        error = (await ask(nc, body))["error"]
        assert error["code"] == code, error
        assert len(error["message"].split()) >= 5, error
        assert answered(ticker, names.JOBS_BACKFILL, code) >= 1

    old = (await ask(nc, backfill("secs", NOW - timedelta(days=15), hour_ago)))["error"]
    assert old["code"] == "invalid_range" and "EVENTS history" in old["message"]
    malformed = {
        b"{not json": "malformed_json",
        json.dumps({**backfill("secs", hour_ago, NOW), "include_paused": True}).encode(): (
            "invalid_request"
        ),
        b" " * 5000: "message_too_large",
    }
    for raw, code in malformed.items():
        assert (await ask(nc, raw))["error"]["code"] == code
    wide = (await ask(nc, refusals["too_many_slots"]))["error"]["message"]
    assert "more than 1000 slots" in wide and "narrow the range" in wide
    future = (await ask(nc, refusals["invalid_range"]))["error"]["message"]
    assert "is after now" in future
    anchored = (await ask(nc, refusals["bad_request"]))["error"]["message"]
    assert "no past slots to backfill" in anchored
    assert await queued(js) == []
    for code in ("malformed_json", "message_too_large"):  # counted as backfills, not triggers
        assert answered(ticker, names.JOBS_TRIGGER, code) == 0
        assert answered(ticker, names.JOBS_BACKFILL, code) >= 1

    one = BackfillReply.model_validate(await ask(nc, backfill("excl", hour_ago, NOW - TICK)))
    assert (one.slots, one.published) == ([hour_ago], 1)


async def test_the_recorder_stores_backfilled_jobs(
    start_ticker: StartTicker,
    nc: Client,
    recorder: RecorderService,
    mongo_db: AsyncDatabase[Document],
) -> None:
    await ticker_on(start_ticker)
    js = nc.jetstream()
    await put_schedules(js, [schedule("daily", cron_expression="0 13 * * *")])

    answer = BackfillReply.model_validate(
        await ask(nc, backfill("daily", NOW - timedelta(days=2), NOW))
    )

    assert answer.published == 2
    expected = {scheduled_job_run_id("daily", slot): slot for slot in answer.slots}

    async def stored() -> list[Document]:
        return await mongo_db["jobs"].find({"scheduled_job_id": "daily"}).to_list()

    documents = await eventually(stored, lambda got: len(got) == 2, what="backfilled jobs")
    assert {d["job_id"]: d["scheduled_for"].replace(tzinfo=UTC) for d in documents} == expected
    assert {(d["trigger"], d["status"]) for d in documents} == {("backfill", "pending")}


@pytest.fixture
async def recorder(settings: Settings, endpoints: Endpoints) -> AsyncIterator[RecorderService]:
    service = RecorderService(settings, endpoints)
    await service.start()
    yield service
    await service.stop()


def _holds(count: int, requests: list[RunRequest]) -> bool:
    return len(requests) == count


async def _leads(ticker: TickerService) -> bool:
    return ticker.is_leader


async def _announced(js: JetStreamContext, scheduled_job_id: str, slot: datetime) -> bool:
    """The leader has adopted the job and announced `slot` as its next run."""
    subject = names.scheduled_job_event_subject(scheduled_job_id)
    try:
        message = await js.get_last_msg(names.STREAM_EVENTS, subject)
    except NotFoundError:
        return False
    return ScheduleEvent.model_validate_json(message.data or b"").next_run_at == slot
