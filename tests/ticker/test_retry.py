"""`jobs.trigger` with `retry_of`: a failed or cancelled job runs again as a new job linked
to it, with the request its last event carried; other jobs are refused with a reason."""

import json
from datetime import timedelta

import pytest
from nats.aio.client import Client

from natscron_shared.contract import names
from natscron_shared.contract.enums import JobStatus, Priority, Trigger
from natscron_shared.contract.messages import JobEvent, RunRequest
from natscron_shared.nats.connection import to_json
from tests.conftest import StartTicker
from tests.ticker.test_ticker_service import T0, JobQueue

pytestmark = pytest.mark.integration


def ended(job_id: str, status: JobStatus) -> JobEvent:
    request = RunRequest(
        job_id=job_id,
        scheduled_job_id="nightly",
        trigger=Trigger.SCHEDULED,
        priority=Priority.NORMAL,
        scheduled_for=T0,
        created_at=T0,
        scraper="noop",
        params={"items": 2},
        max_retries=1,
    )
    return JobEvent(job=request, status=status, attempt=2, at=T0 + timedelta(seconds=5))


async def test_retry_runs_a_failed_job_again_linked_to_it(
    start_ticker: StartTicker, nc: Client
) -> None:
    await start_ticker()
    js = nc.jetstream()
    for job_id, status in (("failed-1", JobStatus.FAILED), ("done-1", JobStatus.COMPLETED)):
        event = ended(job_id, status)
        await js.publish(names.job_event_subject(job_id), to_json(event))

    async def ask(body: dict[str, str]) -> dict[str, object]:
        reply = await nc.request(names.JOBS_TRIGGER, json.dumps(body).encode(), timeout=10)
        answer: dict[str, object] = json.loads(reply.data)
        return answer

    answer = await ask({"retry_of": "failed-1"})
    assert str(answer["job_id"]).startswith("retry_") and answer["status"] == "pending"
    (retried,) = await JobQueue(js).until(1, "the retry queued")
    assert retried.job_id == answer["job_id"]
    assert retried.trigger is Trigger.RETRY and retried.retry_of == "failed-1"
    assert retried.scheduled_job_id == "nightly" and retried.params == {"items": 2}
    assert retried.attempt == 1 and retried.scheduled_for is None
    assert retried.priority is Priority.IMMEDIATE

    for body, code in (
        ({"retry_of": "done-1"}, "not_retryable"),
        ({"retry_of": "never-seen"}, "unknown_job"),
        ({"retry_of": "a.b"}, "invalid_request"),
        ({"retry_of": "failed-1", "scraper": "noop"}, "invalid_request"),
    ):
        error = (await ask(body))["error"]
        assert isinstance(error, dict) and error["code"] == code, (body, error)
