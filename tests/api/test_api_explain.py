"""`explain` through both faces of the API: HTTP `GET /scheduled-jobs/{id}/explain` and NATS
`natscron.api.schedules.explain` answer alike, from the spec in KV and the runs in MongoDB;
a range too wide, backwards or of an unknown schedule gets a clear error."""

from datetime import datetime, timedelta

import httpx
import pytest
from nats.aio.client import Client
from pymongo.asynchronous.database import AsyncDatabase

from natscron_api.explain import MAX_EXPLAINED_SLOTS
from natscron_api.timeline import Explanation
from natscron_shared.contract.job_ids import scheduled_job_run_id
from natscron_shared.contract.storage import Document
from natscron_shared.nats.schedule_bucket import put_schedules
from tests.api.api_support import error_of, finished_event, spec, store_runs
from tests.api.test_api import NOW
from tests.api.test_api_micro import ask, refused

pytestmark = pytest.mark.integration

HOUR = timedelta(hours=1)


def hour(offset: int) -> datetime:
    return NOW.replace(minute=0, second=0) + offset * HOUR


async def test_both_faces_explain_the_hours_of_an_hourly_schedule(
    http: httpx.AsyncClient, nc: Client, mongo_db: AsyncDatabase[Document]
) -> None:
    hourly = spec("hourly", cron_expression="0 * * * *", timezone="Asia/Kolkata")
    await put_schedules(nc.jetstream(), [hourly])
    ran = hour(-2) + HOUR / 2  # a whole hour in Kolkata (UTC+05:30)
    await store_runs(mongo_db, [finished_event(hourly, scheduled_job_run_id("hourly", ran), ran)])
    window = {"from": hour(-3).isoformat(), "to": hour(-1).isoformat()}

    response = await http.get("/scheduled-jobs/hourly/explain", params=window)
    assert response.status_code == 200, response.text
    body = response.json()
    over_nats = await ask(
        nc, "schedules.explain", {"scheduled_job_id": "hourly", "start": window["from"],
                                  "end": window["to"]}
    )  # fmt: skip
    same = Explanation.model_validate({**over_nats, "now": NOW})
    assert same == Explanation.model_validate({**body, "now": NOW})

    assert body["timezone"] == "Asia/Kolkata" and body["spec_revision"] >= 1
    first, second = body["slots"]
    assert first["nominal"] == (hour(-3) + 6 * HOUR).replace(tzinfo=None).isoformat()
    assert first["outcome"] == "no_record"
    assert second["outcome"] == "fired"
    assert second["run"]["job_id"] == scheduled_job_run_id("hourly", ran)
    assert second["run"]["status"] == "completed"
    assert body["counts"] == {"no_record": 1, "fired": 1}
    assert body["other_runs"] == [] and body["other_decisions"] == []


async def test_a_range_too_wide_backwards_or_of_no_schedule_is_refused(
    http: httpx.AsyncClient, nc: Client
) -> None:
    await put_schedules(nc.jetstream(), [spec("busy", cron_expression="* * * * * *")])
    wide = {"from": hour(-1).isoformat(), "to": hour(0).isoformat()}
    response = await http.get("/scheduled-jobs/busy/explain", params=wide)
    assert error_of(response) == (422, "too_many_slots")
    assert f"at most {MAX_EXPLAINED_SLOTS}" in response.json()["error"]["message"]

    backwards = {"from": hour(0).isoformat(), "to": hour(-1).isoformat()}
    response = await http.get("/scheduled-jobs/busy/explain", params=backwards)
    assert error_of(response) == (422, "invalid_range")
    response = await http.get("/scheduled-jobs/nobody/explain")
    assert error_of(response) == (404, "unknown_scheduled_job")
    assert await refused(nc, "schedules.explain", {"scheduled_job_id": "nobody"}) == (
        "unknown_scheduled_job"
    )
