"""The API started in-process on a free port against the test's real servers, called over
TCP with httpx, and MongoDB documents in the recorder's own shapes (written with the
recorder's own functions), so the API reads what the recorder really writes."""

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx
import jwt
from pydantic import SecretStr
from pymongo.asynchronous.database import AsyncDatabase

from natscron_api import ApiService
from natscron_recorder.attempts import attempt_fields
from natscron_recorder.schedule_writer import write_spec
from natscron_recorder.stats import StatsBatch
from natscron_shared.contract.attempts import AttemptRecord
from natscron_shared.contract.enums import JobStatus, Priority, Trigger
from natscron_shared.contract.job_fields import job_fields
from natscron_shared.contract.messages import JobEvent, run_request_for
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.contract.storage import Document
from natscron_shared.runtime.endpoints import Endpoints
from natscron_shared.runtime.mongo import jobs
from natscron_shared.runtime.settings import Settings

READ_TOKEN = "read-token-0123456789"
WRITE_TOKEN = "write-token-0123456789"
JWT_SECRET = "a-test-secret-of-at-least-32-bytes!!"


def api_settings(settings: Settings, **overrides: Any) -> Settings:
    return settings.model_copy(
        update={
            "api_host": "127.0.0.1",
            "api_port": 0,
            "api_tokens": SecretStr(f"{READ_TOKEN}:read,{WRITE_TOKEN}:write"),
            "api_jwt_key": SecretStr(JWT_SECRET),
            **overrides,
        }
    )


@asynccontextmanager
async def running_api(settings: Settings, endpoints: Endpoints) -> AsyncIterator[ApiService]:
    api = ApiService(settings, endpoints)
    try:
        await api.start()
        yield api
    finally:
        await api.stop()


def client(api: ApiService, token: str | None = WRITE_TOKEN) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(base_url=api.url, headers=headers, timeout=30)


def hs256(claims: dict[str, Any], secret: str = JWT_SECRET) -> str:
    return jwt.encode({"exp": int(time.time()) + 600, **claims}, secret, algorithm="HS256")


def error_of(response: httpx.Response) -> tuple[int, str]:
    """(status, code) of an error answer, checking its shape."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    assert body["error"]["message"], body
    return response.status_code, body["error"]["code"]


def spec(scheduled_job_id: str, **fields: Any) -> ScheduledJob:
    values: dict[str, Any] = {
        "scheduled_job_id": scheduled_job_id,
        "name": f"Job {scheduled_job_id}",
        "cron_expression": "0 2 * * *",
        "scraper": "noop",
        **fields,
    }
    return ScheduledJob.model_validate(values)


async def store_schedule(
    db: AsyncDatabase[Document], job: ScheduledJob, at: datetime, **history: Any
) -> None:
    """The document as the recorder's spec mirror writes it, plus history fields."""
    await write_spec(db, job, 1, at)
    if history:
        await db.scheduled_jobs.update_one(
            {"scheduled_job_id": job.scheduled_job_id}, {"$set": history}
        )


def finished_event(
    job: ScheduledJob,
    job_id: str,
    created_at: datetime,
    status: JobStatus = JobStatus.COMPLETED,
    trigger: Trigger = Trigger.SCHEDULED,
    duration_ms: int = 1500,
    scraped: int = 10,
) -> JobEvent:
    request = run_request_for(
        job,
        job_id=job_id,
        trigger=trigger,
        priority=Priority.NORMAL if trigger is Trigger.SCHEDULED else Priority.IMMEDIATE,
        created_at=created_at,
        scheduled_for=created_at if trigger is Trigger.SCHEDULED else None,
    )
    started = created_at + timedelta(seconds=1)
    done = status.is_terminal
    completed = started + timedelta(milliseconds=duration_ms)
    failed = status is JobStatus.FAILED
    ended = AttemptRecord(
        attempt=1,
        status=status,
        runner_id="runner-1",
        started_at=started,
        completed_at=completed,
        duration_ms=duration_ms,
        error_type="RuntimeError" if failed else None,
        error_message="boom" if failed else None,
        traceback="Traceback (most recent call last):\nRuntimeError: boom" if failed else None,
    )
    return JobEvent(
        job=request,
        status=status,
        at=completed,
        runner_id="runner-1",
        started_at=started if status is not JobStatus.PENDING else None,
        completed_at=completed if done else None,
        duration_ms=duration_ms if done else None,
        properties_scraped=scraped if done else None,
        error_message="boom" if failed else None,
        error_type="RuntimeError" if failed else None,
        ended_attempt=ended if done else None,
        metadata={"pages_fetched": 2} if done else None,
    )


async def store_runs(db: AsyncDatabase[Document], events: list[JobEvent], saved: int = 8) -> None:
    """`jobs` documents (and the `job_stats` of the final ones) as the recorder writes them."""
    stats = StatsBatch()
    for event in events:
        fields = job_fields(event, event.at)
        fields["properties_saved"] = saved if event.status.is_terminal else 0
        if event.ended_attempt is not None:
            fields["attempts"] = [attempt_fields(event.ended_attempt)]
        await jobs(db).insert_one(fields)
        if event.status.is_terminal:
            stats.add_final(
                event.job.scheduled_job_id,
                event.status,
                event.completed_at or event.at,
                event.duration_ms,
                event.properties_scraped,
            )
    if len(stats):
        await db.job_stats.bulk_write(stats.updates())
