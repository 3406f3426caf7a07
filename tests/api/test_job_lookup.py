"""`jobs get` of a job MongoDB does not have yet answers from JetStream: the job's newest
event in EVENTS, over HTTP and the CLI alike, with no recorder running."""

from datetime import datetime, timedelta

import httpx
import pytest
import yaml
from nats.aio.client import Client
from pymongo.asynchronous.database import AsyncDatabase

from natscron_shared.contract import names
from natscron_shared.contract.enums import JobStatus
from natscron_shared.contract.messages import JobEvent
from natscron_shared.contract.storage import Document
from natscron_shared.runtime.endpoints import Endpoints
from tests.api.api_support import error_of, finished_event, spec, store_runs
from tests.api.test_api import NOW
from tests.cli.test_cli import cli_env, run_cli
from tests.stack import publish

pytestmark = pytest.mark.integration

STARTED = NOW - timedelta(seconds=4)


async def store_events(nc: Client, *events: JobEvent) -> None:
    """Into EVENTS, as the ticker and the runners publish them."""
    for event in events:
        subject = names.job_event_subject(event.job.job_id)
        await publish(nc.jetstream(), subject, event, event.msg_id)


def running(job_id: str) -> tuple[JobEvent, JobEvent]:
    """The `pending` and `running` events of a job that runs now."""
    request = finished_event(spec("alpha"), job_id, NOW - timedelta(seconds=5)).job
    pending = JobEvent(job=request, status=JobStatus.PENDING, at=request.created_at)
    started = JobEvent(
        job=request, status=JobStatus.RUNNING, at=STARTED, runner_id="runner-7", started_at=STARTED
    )
    return pending, started


async def test_a_running_job_mongodb_lacks_answers_from_its_newest_event(
    http: httpx.AsyncClient, nc: Client, endpoints: Endpoints
) -> None:
    pending, started = running("alpha-live")
    await store_events(nc, pending, started)

    answer = await http.get("/api/v1/executions/alpha-live")
    assert answer.status_code == 200, answer.text
    job = answer.json()
    assert job["source"] == "events"
    assert (job["job_id"], job["scheduled_job_id"], job["status"]) == (
        "alpha-live",
        "alpha",
        "running",
    )
    assert (job["attempt"], job["runner_id"], job["trigger"]) == (1, "runner-7", "scheduled")
    assert datetime.fromisoformat(job["started_at"]) == STARTED
    assert job["completed_at"] is None

    env = cli_env(NATSCRON_NATS_URL=endpoints.nats_url)
    code, out, err = await run_cli("jobs", "get", "alpha-live", "-o", "yaml", env=env)
    assert (code, err) == (0, ""), err
    assert yaml.safe_load(out) == yaml.safe_load(yaml.safe_dump(job))
    code, out, err = await run_cli("jobs", "get", "alpha-live", env=env)
    assert code == 0, err
    assert "events" in out and "running" in out and "runner-7" in out


async def test_mongodb_wins_once_it_has_the_job_and_no_event_is_no_job(
    http: httpx.AsyncClient, nc: Client, mongo_db: AsyncDatabase[Document]
) -> None:
    pending, started = running("alpha-done")
    await store_events(nc, pending, started)
    done = finished_event(spec("alpha"), "alpha-done", NOW - timedelta(seconds=5))
    await store_runs(mongo_db, [done])

    job = (await http.get("/api/v1/executions/alpha-done")).json()
    assert job["status"] == "completed" and "source" not in job

    assert error_of(await http.get("/api/v1/executions/alpha-never")) == (404, "unknown_job")


async def test_a_document_only_item_batches_wrote_is_not_a_run_yet(
    http: httpx.AsyncClient, nc: Client, mongo_db: AsyncDatabase[Document]
) -> None:
    """Items can reach a job's document while the recorder still holds its events: until
    they are written, the job is answered from its events and left out of listings."""
    pending, started = running("alpha-items")
    await store_events(nc, pending, started)
    await mongo_db.jobs.insert_one(
        {"job_id": "alpha-items", "scheduled_job_id": "alpha", "properties_saved": 5}
    )

    answer = await http.get("/api/v1/executions/alpha-items")
    assert answer.status_code == 200, answer.text
    assert (answer.json()["source"], answer.json()["status"]) == ("events", "running")
    listed = (await http.get("/api/v1/executions")).json()
    assert "alpha-items" not in [run["job_id"] for run in listed["executions"]]
