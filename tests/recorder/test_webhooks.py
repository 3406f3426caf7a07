"""Webhooks on real servers: final job events POSTed, signed, to a local HTTP receiver."""

import asyncio
import contextlib
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from pydantic import ValidationError

from natscron_recorder import RecorderService
from natscron_recorder.webhooks import WebhookSettings
from natscron_shared.contract import names
from natscron_shared.contract.enums import JobStatus, Priority, Trigger
from natscron_shared.contract.messages import JobEvent, RunRequest
from natscron_shared.contract.models import ScheduledJob, Webhook
from natscron_shared.nats.schedule_bucket import put_schedules
from natscron_shared.runtime.endpoints import Endpoints
from natscron_shared.runtime.settings import Settings
from tests.stack import publish, running_stack
from tests.waiting import eventually

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
SECRET = "s3cret-value"
SECRET_VARIABLE = "NATSCRON_WEBHOOK_SECRET_HOOKS_KEY"
DELIVERIES = "natscron_webhook_deliveries_total"


# --- a local webhook receiver ----------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    answered: int

    @property
    def json(self) -> dict[str, Any]:
        payload: dict[str, Any] = json.loads(self.body)
        return payload


@dataclass
class Receiver:
    """An HTTP/1.1 server on localhost that records each request and answers the statuses
    of `answers` in turn, then 200."""

    answers: list[int] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    url: str = ""
    _server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/hooks/natscron?token=t0ken"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def calls_made(self) -> list[Call]:
        return list(self.calls)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            method, target, _ = head[0].split(" ", 2)
            headers = {}
            for line in head[1:]:
                if line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            status = self.answers.pop(0) if self.answers else 200
            self.calls.append(Call(method, target, headers, body, status))
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
            )
            await writer.drain()
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    yield server
    await server.stop()


# --- helpers ---------------------------------------------------------------------------------


@pytest.fixture
def fast_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "webhook_backoff_seconds": 0.05,
            "webhook_max_attempts": 3,
            "webhook_timeout_seconds": 5.0,
        }
    )


StartRecorder = Callable[[], Awaitable[RecorderService]]


@pytest.fixture
async def start_recorder(
    fast_settings: Settings, endpoints: Endpoints
) -> AsyncIterator[StartRecorder]:
    started: list[RecorderService] = []

    async def start() -> RecorderService:
        service = RecorderService(fast_settings, endpoints)
        started.append(service)
        await service.start()
        return service

    yield start
    for service in started:
        await service.stop()


def spec(*webhooks: Webhook, scheduled_job_id: str = "hooked") -> ScheduledJob:
    return ScheduledJob(
        scheduled_job_id=scheduled_job_id,
        name="Hooked",
        cron_expression="0 * * * *",
        scraper="noop",
        webhooks=list(webhooks),
    )


def final_event(job_id: str, status: JobStatus, scheduled_job_id: str = "hooked") -> JobEvent:
    job = RunRequest(
        job_id=job_id,
        scheduled_job_id=scheduled_job_id,
        trigger=Trigger.SCHEDULED,
        priority=Priority.NORMAL,
        scheduled_for=T0,
        created_at=T0,
        scraper="noop",
    )
    done = T0 + timedelta(seconds=2)
    return JobEvent(
        job=job,
        status=status,
        at=done,
        runner_id="r1",
        started_at=T0,
        completed_at=done,
        duration_ms=2000,
        properties_scraped=3 if status is JobStatus.COMPLETED else 0,
        error_message="boom" if status is JobStatus.FAILED else None,
    )


async def publish_event(js: JetStreamContext, event: JobEvent) -> None:
    await publish(js, names.job_event_subject(event.job.job_id), event, event.msg_id)


async def publish_run(js: JetStreamContext, job_id: str, status: JobStatus) -> None:
    """The events of one run: pending, running (neither calls anything), then the final one."""
    final = final_event(job_id, status)
    for step in (JobStatus.PENDING, JobStatus.RUNNING):
        await publish_event(js, final.model_copy(update={"status": step}))
    await publish_event(js, final)


def count(service: RecorderService, outcome: str) -> float:
    return service.registry.get_sample_value(DELIVERIES, {"outcome": outcome}) or 0.0


def counted(service: RecorderService, outcome: str) -> Callable[[], Awaitable[float]]:
    async def probe() -> float:
        return count(service, outcome)

    return probe


async def all_handled(js: JetStreamContext) -> bool:
    """Every event published so far was taken by the `webhooks` consumer and settled."""
    info = await js.consumer_info(names.STREAM_EVENTS, names.WEBHOOKS_CONSUMER)
    return bool(info.num_pending == 0 and info.num_ack_pending == 0)


def expected_signature(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed_webhook(receiver: Receiver, *on: JobStatus) -> Webhook:
    return Webhook(url=receiver.url, on=list(on), secret="hooks-key")


# --- the spec --------------------------------------------------------------------------------


def test_a_webhook_names_a_secret_and_final_statuses_only() -> None:
    hook = Webhook(url="https://example.com/x", on=[JobStatus.FAILED], secret="team-a_prod")
    assert hook.secret_variable == "NATSCRON_WEBHOOK_SECRET_TEAM_A_PROD"
    assert Webhook(url="http://h:8080/", on=[JobStatus.SKIPPED]).secret_variable is None
    bad: list[dict[str, Any]] = [
        {"url": "ftp://example.com/x", "on": ["failed"]},
        {"url": "https:///no-host", "on": ["failed"]},
        {"url": "https://example.com:port/", "on": ["failed"]},
        {"url": "https://example.com/x", "on": []},
        {"url": "https://example.com/x", "on": ["running"]},
        {"url": "https://example.com/x", "on": ["failed"], "secret": "not a token"},
        {"url": "https://example.com/x", "on": ["failed"], "extra": 1},
    ]
    for fields in bad:
        with pytest.raises(ValidationError):
            Webhook.model_validate(fields)
    with pytest.raises(ValidationError, match="at most 5"):
        spec(*[hook] * 6)
    stored = ScheduledJob.model_validate_json(spec(hook).model_dump_json())
    assert stored.webhooks == [hook]


def test_backoff_doubles_from_the_base() -> None:
    settings = WebhookSettings(concurrency=1, timeout_seconds=1, max_attempts=6, backoff_seconds=1)
    assert [settings.backoff(n) for n in range(1, 6)] == [1, 2, 4, 8, 16]


# --- delivery --------------------------------------------------------------------------------


@pytest.mark.integration
async def test_final_events_are_posted_signed(
    start_recorder: StartRecorder,
    receiver: Receiver,
    nc: Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(SECRET_VARIABLE, SECRET)
    js = nc.jetstream()
    await put_schedules(js, [spec(signed_webhook(receiver, JobStatus.FAILED, JobStatus.COMPLETED))])
    recorder = await start_recorder()

    await publish_run(js, "job-ok", JobStatus.COMPLETED)
    await publish_run(js, "job-bad", JobStatus.FAILED)

    calls = await eventually(receiver.calls_made, lambda c: len(c) == 2, what="two calls")
    by_job = {call.json["job_id"]: call for call in calls}
    assert by_job.keys() == {"job-ok", "job-bad"}
    for job_id, status in (("job-ok", "completed"), ("job-bad", "failed")):
        call = by_job[job_id]
        assert (call.method, call.target) == ("POST", "/hooks/natscron?token=t0ken")
        assert call.headers["content-type"] == "application/json"
        assert call.headers["x-natscron-delivery"] == f"{job_id}:{status}"
        assert hmac.compare_digest(
            call.headers["x-natscron-signature"], expected_signature(call.body)
        )
        body = call.json
        assert body["delivery"] == f"{job_id}:{status}"
        assert (body["scheduled_job_id"], body["status"], body["attempt"]) == (
            "hooked",
            status,
            1,
        )
        assert body["trigger"] == "scheduled"
        assert datetime.fromisoformat(body["scheduled_for"]) == T0
        assert datetime.fromisoformat(body["completed_at"]) == T0 + timedelta(seconds=2)
        assert body["duration_ms"] == 2000
    assert by_job["job-ok"].json["properties_scraped"] == 3
    assert by_job["job-bad"].json["error_message"] == "boom"

    await eventually(lambda: all_handled(js), what="every event acked")
    assert len(receiver.calls) == 2, "pending and running events call nothing"
    assert count(recorder, "delivered") == 2
    assert count(recorder, "failed_attempt") == count(recorder, "gave_up") == 0
    duration = "natscron_webhook_request_duration_seconds_count"
    assert recorder.registry.get_sample_value(duration) == 2


@pytest.mark.integration
async def test_a_500_is_retried_and_then_delivered(
    start_recorder: StartRecorder,
    receiver: Receiver,
    nc: Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(SECRET_VARIABLE, SECRET)
    receiver.answers = [500]
    js = nc.jetstream()
    await put_schedules(js, [spec(signed_webhook(receiver, JobStatus.FAILED))])
    recorder = await start_recorder()

    await publish_event(js, final_event("job-retried", JobStatus.FAILED))

    first, second = await eventually(
        receiver.calls_made, lambda c: len(c) == 2, what="a call after the 500"
    )
    assert (first.answered, second.answered) == (500, 200)
    assert first.body == second.body
    assert first.headers["x-natscron-delivery"] == second.headers["x-natscron-delivery"]
    assert second.headers["x-natscron-signature"] == expected_signature(second.body)
    await eventually(lambda: all_handled(js), what="the event acked once delivered")
    assert count(recorder, "failed_attempt") == 1
    assert count(recorder, "delivered") == 1
    assert count(recorder, "gave_up") == 0


@pytest.mark.integration
async def test_retries_end_and_a_4xx_is_final(
    start_recorder: StartRecorder, receiver: Receiver, nc: Client
) -> None:
    """max_attempts is 3 here: three 503s give up; a 404 gives up at once."""
    receiver.answers = [503, 503, 503, 404]
    js = nc.jetstream()
    await put_schedules(js, [spec(Webhook(url=receiver.url, on=[JobStatus.FAILED]))])
    recorder = await start_recorder()

    await publish_event(js, final_event("job-unlucky", JobStatus.FAILED))
    await eventually(lambda: all_handled(js), what="the first event given up and acked")
    assert [call.answered for call in receiver.calls] == [503, 503, 503]
    assert (count(recorder, "failed_attempt"), count(recorder, "gave_up")) == (2, 1)

    await publish_event(js, final_event("job-refused", JobStatus.FAILED))
    await eventually(lambda: all_handled(js), what="the second event given up and acked")
    assert [call.answered for call in receiver.calls] == [503, 503, 503, 404]
    assert (count(recorder, "failed_attempt"), count(recorder, "gave_up")) == (2, 2)
    assert count(recorder, "delivered") == 0
    assert "x-natscron-signature" not in receiver.calls[0].headers


@pytest.mark.integration
async def test_a_status_not_in_on_sends_nothing(
    start_recorder: StartRecorder,
    receiver: Receiver,
    nc: Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(SECRET_VARIABLE, SECRET)
    js = nc.jetstream()
    await put_schedules(js, [spec(signed_webhook(receiver, JobStatus.FAILED))])
    recorder = await start_recorder()

    await publish_run(js, "job-fine", JobStatus.COMPLETED)
    await publish_event(js, final_event("job-cancelled", JobStatus.CANCELLED))
    await publish_event(js, final_event("job-other", JobStatus.FAILED, scheduled_job_id="other"))
    await eventually(lambda: all_handled(js), what="every event acked")
    assert receiver.calls == []
    assert count(recorder, "delivered") == 0

    await publish_event(js, final_event("job-broken", JobStatus.FAILED))
    [call] = await eventually(receiver.calls_made, what="the failed run's call")
    assert call.json["job_id"] == "job-broken"


@pytest.mark.integration
async def test_a_missing_secret_sends_nothing_and_is_counted(
    start_recorder: StartRecorder,
    receiver: Receiver,
    nc: Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("NATSCRON_WEBHOOK_SECRET_ABSENT", raising=False)
    js = nc.jetstream()
    unsigned = Webhook(url=receiver.url + "&unsigned", on=[JobStatus.FAILED])
    missing = Webhook(url=receiver.url + "&missing", on=[JobStatus.FAILED], secret="absent")
    await put_schedules(js, [spec(unsigned, missing)])
    recorder = await start_recorder()
    directory = recorder._directory
    assert directory is not None

    async def known() -> tuple[Webhook, ...]:
        return directory.webhooks_of("hooked")

    await eventually(known, what="the webhooks known")
    await publish_event(js, final_event("job-x", JobStatus.FAILED))
    await eventually(lambda: all_handled(js), what="the event acked")
    [call] = await eventually(receiver.calls_made, what="a call")
    assert call.target.endswith("&unsigned")
    assert "x-natscron-signature" not in call.headers
    assert count(recorder, "missing_secret") == 1
    assert count(recorder, "delivered") == 1


@pytest.mark.integration
async def test_webhooks_follow_the_spec_in_kv(
    start_recorder: StartRecorder, receiver: Receiver, nc: Client
) -> None:
    """Specs put, changed and deleted while the recorder runs reach the sender's watch."""
    js = nc.jetstream()
    recorder = await start_recorder()
    directory = recorder._directory
    assert directory is not None

    async def known() -> tuple[Webhook, ...]:
        return directory.webhooks_of("hooked")

    await put_schedules(js, [spec(Webhook(url=receiver.url, on=[JobStatus.FAILED]))])
    await eventually(known, what="the webhook known")

    await publish_event(js, final_event("job-1", JobStatus.FAILED))
    await eventually(receiver.calls_made, what="a call")

    kv = await js.key_value(names.KV_SCHEDULED_JOBS)
    await kv.delete("hooked")
    await eventually(known, lambda hooks: hooks == (), what="the webhook forgotten")
    await publish_event(js, final_event("job-2", JobStatus.FAILED))
    await eventually(lambda: all_handled(js), what="the event acked")
    assert [call.json["job_id"] for call in receiver.calls] == ["job-1"]
    assert count(recorder, "delivered") == 1


@pytest.mark.integration
async def test_a_scheduled_run_of_the_whole_stack_calls_its_webhook(
    fast_settings: Settings,
    endpoints: Endpoints,
    receiver: Receiver,
    nc: Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(SECRET_VARIABLE, SECRET)
    every_second = ScheduledJob(
        scheduled_job_id="hooked-live",
        name="Hooked, live",
        cron_expression="* * * * * *",
        scraper="noop",
        params={"items": 2},
        webhooks=[signed_webhook(receiver, JobStatus.COMPLETED)],
    )
    async with running_stack(fast_settings, endpoints):
        await put_schedules(nc.jetstream(), [every_second])
        calls = await eventually(receiver.calls_made, what="a call from a real run")
    body = calls[0].json
    assert body["scheduled_job_id"] == "hooked-live"
    assert body["status"] == "completed" and body["properties_scraped"] == 2
    assert body["job_id"].startswith("scheduled_hooked-live_")
    assert calls[0].headers["x-natscron-signature"] == expected_signature(calls[0].body)


@pytest.mark.integration
async def test_a_stop_during_backoff_hands_the_event_back(
    settings: Settings, endpoints: Endpoints, receiver: Receiver, nc: Client
) -> None:
    """Stopping does not wait out a backoff: the event is handed back at once (not left to
    its 30 s ack wait) and the next recorder delivers it."""
    receiver.answers = [503]
    js = nc.jetstream()
    await put_schedules(js, [spec(Webhook(url=receiver.url, on=[JobStatus.FAILED]))])
    patient = settings.model_copy(update={"webhook_backoff_seconds": 60.0})
    first = RecorderService(patient, endpoints)
    await first.start()
    try:
        await publish_event(js, final_event("job-handed-back", JobStatus.FAILED))
        await eventually(receiver.calls_made, what="the first call")
        await eventually(counted(first, "failed_attempt"), what="its failure counted")
    finally:
        await first.stop()
    assert len(receiver.calls) == 1

    second = RecorderService(patient, endpoints)
    await second.start()
    try:
        calls = await eventually(
            receiver.calls_made, lambda c: len(c) == 2, within=15, what="the call made again"
        )
        assert calls[1].answered == 200
        assert calls[1].headers["x-natscron-delivery"] == "job-handed-back:failed"
        await eventually(lambda: all_handled(js), what="the event acked")
        assert count(second, "delivered") == 1
    finally:
        await second.stop()
