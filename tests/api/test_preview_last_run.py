"""The preview of an interval `from: last_run`: in words, and its next run as the ticker
reckons it from KV `ticker_state` and `last_runs`."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from nats.aio.client import Client

from natscron_shared.contract import names
from natscron_shared.contract.enums import JobStatus
from natscron_shared.contract.last_runs import LastRunRecord, longest_run
from natscron_shared.contract.ticker_state import SlotState
from natscron_shared.nats.schedule_bucket import put_schedules
from tests.api.api_support import spec

pytestmark = pytest.mark.integration

SLOT = datetime(2026, 1, 1, 12, tzinfo=UTC)
QUERY = {"after": "2026-01-01T12:00:00Z", "count": "5"}


async def preview(http: httpx.AsyncClient, scheduled_job_id: str) -> dict[str, object]:
    shown = await http.get(f"/scheduled-jobs/{scheduled_job_id}/preview", params=QUERY)
    assert shown.status_code == 200, shown.text
    body: dict[str, object] = shown.json()
    return body


async def test_the_next_run_is_a_period_after_the_last_run_finished(
    http: httpx.AsyncClient, nc: Client
) -> None:
    js = nc.jetstream()
    job = spec("after", cron_expression=None, interval={"minutes": 30, "from": "last_run"})
    await put_schedules(js, [job])
    states = await js.key_value(names.KV_TICKER_STATE)
    await states.put("after", SlotState(handled_until=SLOT, last_fired_slot=SLOT).to_json())

    # Fired, not finished: at the latest after its longest run.
    body = await preview(http, "after")
    assert body["schedule"] == "30 minutes after the previous run finished"
    presumed = SLOT + longest_run(job) + timedelta(minutes=30)
    assert body["next_fire_times"] == [presumed.isoformat().replace("+00:00", "Z")]

    finished = SLOT + timedelta(minutes=41)
    record = LastRunRecord(
        scheduled_job_id="after",
        job_id="scheduled_after_1",
        scheduled_for=SLOT,
        status=JobStatus.COMPLETED,
        finished_at=finished,
    )
    await (await js.key_value(names.KV_LAST_RUNS)).put("after", record.model_dump_json().encode())
    body = await preview(http, "after")
    assert body["next_fire_times"] == ["2026-01-01T13:11:00Z"]

    plain = spec("grid", cron_expression=None, interval={"minutes": 30})
    await put_schedules(js, [plain])
    body = await preview(http, "grid")
    assert body["schedule"] == "every 30 minutes"
    assert len(body["next_fire_times"]) == 5  # type: ignore[arg-type]
