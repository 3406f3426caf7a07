"""A takeover puts every job on the agenda from the `ticker_state` it followed all along:
it writes nothing and announces nothing for a job whose state agrees with its spec, still
catches up what a job was owed, and settles a job new to it (one state, one announcement)."""

from datetime import timedelta

from nats.aio.client import Client
from nats.js import JetStreamContext

from natscron_shared.contract import names
from natscron_shared.contract.job_ids import scheduled_job_run_id
from natscron_shared.contract.ticker_state import SlotState
from natscron_shared.nats.schedule_bucket import put_schedules
from natscron_shared.runtime.clock import ManualClock
from tests.conftest import StartTicker
from tests.ticker.test_ticker_burst import announced
from tests.ticker.test_ticker_service import T0, JobQueue, leading, sample, schedule
from tests.waiting import eventually

SETTLED = 200


async def state_writes(js: JetStreamContext) -> int:
    return (await js.stream_info(f"KV_{names.KV_TICKER_STATE}")).state.last_seq


async def test_a_takeover_writes_nothing_for_settled_jobs_and_catches_up_the_late_one(
    start_ticker: StartTicker, nc: Client
) -> None:
    js = nc.jetstream()
    settled = [schedule(f"settled-{n:03d}") for n in range(SETTLED)]
    late, fresh = schedule("late"), schedule("fresh")
    await put_schedules(js, [*settled, late, fresh])
    states = await js.key_value(names.KV_TICKER_STATE)
    for spec in settled:  # as the last leader left them: handled up to now
        await states.put(spec.scheduled_job_id, SlotState(handled_until=T0).to_json())
    # The last leader died before firing 12:00:00 of "late".
    await states.put("late", SlotState(handled_until=T0 - timedelta(seconds=15)).to_json())
    writes_before = await state_writes(js)

    ticker = await start_ticker(ManualClock(T0))
    await leading(ticker)

    async def takeovers() -> float:
        return sample(ticker, "natscron_ticker_takeovers_total")

    await eventually(takeovers, lambda count: count == 1, what="the takeover")
    requests = await JobQueue(js).until(1, "the late job's missed slot")
    missed = T0.replace(microsecond=0)
    assert [r.job_id for r in requests] == [scheduled_job_run_id("late", missed)]
    await eventually(lambda: announced(js), lambda ids: "fresh" in ids, what="fresh announced")
    assert await announced(js) <= {"fresh", "late"}, "a settled job was announced again"
    await eventually(
        lambda: state_writes(js), lambda seq: seq == writes_before + 2, what="two states saved"
    )
    written = {(await states.get(key)).revision: key for key in ("late", "fresh")}
    assert set(written) == {writes_before + 1, writes_before + 2}, "a settled job was saved"
    assert len(ticker.states) == SETTLED + 2, "the standby mirror follows every state"
