"""Run controls on real servers: `jobs.cancel`, the claims of KV `running` with the overlap
policies `forbid` and `replace` (across runner processes, and past a SIGKILLed runner), and
attempts that count only real attempts (a hand-back is none; a retry waits its backoff).

KV `running` is provisioned with a 3 s TTL here (`NATSCRON_CLAIM_TTL_SECONDS` does the same
for `natscron provision`), so a dead runner's claims lapse quickly.
"""

import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.errors import KeyNotFoundError
from prometheus_client import CollectorRegistry
from pymongo.asynchronous.database import AsyncDatabase

from natscron.provisioning.provision import provision
from natscron_recorder import RecorderService
from natscron_shared.contract import names
from natscron_shared.contract.cancel import CancelMarker
from natscron_shared.contract.claims import ScheduleClaim
from natscron_shared.contract.enums import ConcurrencyPolicy, JobStatus, Priority, Trigger
from natscron_shared.contract.messages import JobEvent, RunRequest, run_request_for
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.contract.storage import Document
from natscron_shared.nats.connection import JetStreamPublisher
from natscron_shared.nats.jetstream_layout import jetstream_layout
from natscron_shared.runtime.endpoints import Endpoints
from natscron_shared.runtime.settings import Settings
from natscron_ticker.bulk_publish import BulkPublisher
from natscron_ticker.publishing import JobPublisher
from tests.conftest import LEASE_TTL_SECONDS, StartRunner
from tests.processes import Fleet, ServiceProcess
from tests.runner.test_runner_service import (
    Observer,
    jobs_queue_empty,
    run_request,
    sample,
    submit,
)
from tests.servers import Server
from tests.waiting import eventually

pytestmark = pytest.mark.integration

CLAIM_TTL_SECONDS = 3.0
LAPSE_WITHIN = CLAIM_TTL_SECONDS + 4.0
"""A dead runner's claim is gone once the TTL ran out from its last renewal, and
JetStream's expiry timer fired."""


@pytest.fixture
async def short_claims(nats_server: Server, nc: Client) -> float:
    """KV `running` with a 3 s TTL, provisioned as `natscron provision` would with
    NATSCRON_CLAIM_TTL_SECONDS=3 (the bucket's TTL changes in place)."""
    layout = jetstream_layout(1, LEASE_TTL_SECONDS, claim_ttl_seconds=CLAIM_TTL_SECONDS)
    await provision(nc.jetstream(), layout)
    status = await (await nc.jetstream().key_value(names.KV_RUNNING)).status()
    assert status.ttl == CLAIM_TTL_SECONDS
    return CLAIM_TTL_SECONDS


@pytest.fixture
async def observer(nc: Client) -> Observer:
    watching = Observer()
    await watching.start(nc.jetstream())
    return watching


@pytest.fixture
def start_runner(short_claims: float, start_runner: StartRunner) -> StartRunner:
    """Runners of these tests see claims lapse after `short_claims` seconds."""
    del short_claims
    return start_runner


@pytest.fixture
async def fleet(short_claims: float, endpoints: Endpoints, tmp_path: Path) -> AsyncIterator[Fleet]:
    processes = Fleet(
        log_dir=tmp_path,
        base_env={
            "NATSCRON_NATS_URL": endpoints.nats_url,
            "NATSCRON_MONGO_URL": endpoints.mongo_url,
            "NATSCRON_DATA_DIR": str(tmp_path / "data"),
            "NATSCRON_SHUTDOWN_GRACE_SECONDS": "0.2",
            "NATSCRON_RUNNER_CONCURRENCY": "1",
        },
    )
    try:
        yield processes
    except BaseException:
        print(processes.log_tails())
        raise
    finally:
        await processes.kill_all()
        assert processes.survivors() == []


async def runner_processes(fleet: Fleet, *runner_ids: str, **env: str) -> list[ServiceProcess]:
    runners = [fleet.service(i, "runner", NATSCRON_RUNNER_ID=i, **env) for i in runner_ids]
    for runner in runners:
        await runner.start()
    for runner in runners:
        await runner.wait_ready()
    return runners


async def cancel(nc: Client, job_id: str, **fields: Any) -> dict[str, Any]:
    reply = await nc.request(
        names.JOBS_CANCEL, json.dumps({"job_id": job_id, **fields}).encode(), timeout=5
    )
    answer: dict[str, Any] = json.loads(reply.data)
    return answer


async def _value(value: Any) -> Any:
    return value


def running(observer: Observer, job_id: str) -> JobEvent | None:
    return next((e for e in observer.of(job_id) if e.status is JobStatus.RUNNING), None)


async def until_running(observer: Observer, job_id: str, within: float = 15) -> JobEvent:
    event: JobEvent = await eventually(
        lambda: _value(running(observer, job_id)), within=within, what=f"{job_id} running"
    )
    return event


def final(observer: Observer, job_id: str) -> JobEvent:
    terminal = [e for e in observer.of(job_id) if e.status.is_terminal]
    assert len(terminal) == 1, observer.steps(job_id)
    return terminal[0]


async def claim_gone(nc: Client, key: str) -> bool:
    try:
        await (await nc.jetstream().key_value(names.KV_RUNNING)).get(key)
    except KeyNotFoundError:
        return True
    return False


def schedule(scheduled_job_id: str, policy: ConcurrencyPolicy) -> ScheduledJob:
    return ScheduledJob(
        scheduled_job_id=scheduled_job_id,
        name=scheduled_job_id,
        cron_expression="* * * * *",
        scraper="noop",
        concurrency_policy=policy,
    )


def run_of(spec: ScheduledJob, **params: Any) -> RunRequest:
    """A run request of `spec` as the ticker publishes it, with the scrape's params."""
    now = datetime.now(UTC)
    request = run_request_for(
        spec,
        job_id=f"scheduled_{spec.scheduled_job_id}_{uuid.uuid4().hex[:8]}",
        trigger=Trigger.SCHEDULED,
        priority=Priority.NORMAL,
        created_at=now,
        scheduled_for=now,
    )
    return request.model_copy(update={"params": params})


# -- jobs.cancel ------------------------------------------------------------------------


async def test_cancel_stops_a_running_job_keeps_its_items_and_frees_the_slot(
    nc: Client,
    observer: Observer,
    start_runner: StartRunner,
    settings: Settings,
    endpoints: Endpoints,
    mongo_db: AsyncDatabase[Document],
) -> None:
    recorder = RecorderService(settings, endpoints)
    await recorder.start()
    try:
        runner = await start_runner(runner_concurrency=1)
        job = await submit(nc, run_request(params={"items": 3, "hold_seconds": 60}))
        await until_running(observer, job)

        asked = datetime.now(UTC)
        reply = await cancel(nc, job, reason="wrong city", by="alice")
        assert reply["found"] == "running" and runner.runner_id in reply["message"], reply
        await observer.until_finished(job, within=20)

        done = final(observer, job)
        assert observer.steps(job) == [("running", 1), ("cancelled", 1)]
        assert done.completed_at is not None and done.completed_at - asked < timedelta(seconds=1)
        assert (done.cancelled_by, done.error_message) == ("alice", "wrong city")
        assert (done.properties_scraped, done.item_batches) == (3, 1), "items kept"
        assert sum(len(b.items) for b in observer.batches if b.job_id == job) == 3
        await jobs_queue_empty(nc)  # acked
        assert await claim_gone(nc, names.running_job_key(job))

        after = await submit(nc, run_request(params={"items": 1}))
        await observer.until_finished(after, within=20)
        assert final(observer, after).status is JobStatus.COMPLETED, "the slot was freed"
        assert sample(runner, "natscron_runner_cancel_requests_total", outcome="running") == 1
        assert sample(runner, "natscron_runner_cancelled_total", stage="running") == 1
        assert sample(runner, "natscron_runner_jobs_total", status="cancelled") == 1

        async def document() -> Document | None:
            return await mongo_db["jobs"].find_one({"job_id": job, "properties_saved": 3})

        doc = await eventually(document, what="the cancelled job recorded with its items")
        assert doc is not None
        assert doc["status"] == "cancelled" and doc["attempt"] == 1
        assert (doc["cancelled_by"], doc["error_message"]) == ("alice", "wrong city")
    finally:
        await recorder.stop()


async def test_cancel_of_a_queued_job_ends_it_cancelled_without_running(
    nc: Client, observer: Observer, start_runner: StartRunner
) -> None:
    runner = await start_runner(runner_concurrency=1)
    busy = await submit(nc, run_request(params={"hold_seconds": 60}))
    await until_running(observer, busy)
    queued = run_request()  # published as the ticker does: the request, then `pending`
    jetstream = JetStreamPublisher(nc.jetstream(), CollectorRegistry())
    await JobPublisher(jetstream, BulkPublisher(nc, jetstream.count)).publish_job(queued)

    reply = await cancel(nc, queued.job_id, reason="not needed")
    assert reply["found"] == "queued", reply
    assert (await cancel(nc, busy))["found"] == "running"
    await observer.until_finished(busy, queued.job_id, within=20)

    assert observer.steps(queued.job_id) == [("pending", 1), ("cancelled", 1)], "never ran"
    done = final(observer, queued.job_id)
    assert done.error_message == "not needed" and done.cancelled_by is None
    assert done.runner_id == runner.runner_id and done.started_at is None
    await jobs_queue_empty(nc)
    assert (await cancel(nc, busy))["found"] == "finished"
    assert (await cancel(nc, "adhoc_never_published"))["found"] == "unknown"
    assert sample(runner, "natscron_runner_cancelled_total", stage="queued") == 1
    assert sample(runner, "natscron_runner_cancelled_total", stage="running") == 1


async def test_bad_cancel_requests_get_an_error_and_fire_and_forget_works(
    nc: Client, observer: Observer, start_runner: StartRunner
) -> None:
    runner = await start_runner()
    bad = {
        b"not json": "malformed_json",
        b'{"job_id": "a.b"}': "invalid_request",
        b'{"job_id": "x", "force": true}': "invalid_request",
    }
    for body, code in bad.items():
        reply = json.loads((await nc.request(names.JOBS_CANCEL, body, timeout=5)).data)
        assert reply["error"]["code"] == code, (body, reply)
    huge = json.dumps({"job_id": "x", "reason": "y" * 20_000}).encode()
    reply = json.loads((await nc.request(names.JOBS_CANCEL, huge, timeout=5)).data)
    assert reply["error"]["code"] == "message_too_large"
    assert [
        sample(runner, "natscron_requests_total", endpoint=names.JOBS_CANCEL, outcome=code)
        for code in ("malformed_json", "invalid_request", "message_too_large")
    ] == [1, 2, 1]

    await nc.publish(names.JOBS_CANCEL, json.dumps({"job_id": "adhoc_later"}).encode())
    cancels = await nc.jetstream().key_value(names.KV_CANCELS)

    async def marker() -> CancelMarker | None:
        try:
            entry = await cancels.get("adhoc_later")
        except KeyNotFoundError:
            return None
        return CancelMarker.model_validate_json(entry.value or b"")

    stored = await eventually(marker, what="the fire-and-forget marker")
    assert stored is not None and stored.job_id == "adhoc_later"
    assert runner.is_ready()


async def test_a_runner_started_after_the_cancel_refuses_the_job(
    nc: Client, observer: Observer, start_runner: StartRunner
) -> None:
    job = run_request(params={"items": 5})
    cancels = await nc.jetstream().key_value(names.KV_CANCELS)
    marker = CancelMarker(job_id=job.job_id, reason="stop", by="ops", at=datetime.now(UTC))
    await cancels.put(job.job_id, marker.model_dump_json().encode())
    await submit(nc, job)

    await start_runner()  # learns the marker from the watch's initial values
    await observer.until_finished(job.job_id)
    assert observer.steps(job.job_id) == [("cancelled", 1)]
    assert final(observer, job.job_id).cancelled_by == "ops"
    assert not observer.batches
    await jobs_queue_empty(nc)


# -- overlap policies, across runner processes -----------------------------------------


def spans(observer: Observer, job_ids: list[str]) -> list[tuple[datetime, datetime, str]]:
    """(started_at, completed_at, job) of each run that ran, from its final event."""
    found = []
    for job_id in job_ids:
        done = final(observer, job_id)
        if done.started_at is not None and done.completed_at is not None:
            found.append((done.started_at, done.completed_at, job_id))
    return sorted(found)


async def test_forbid_never_runs_two_runs_of_a_schedule_at_once_across_runners(
    nc: Client, observer: Observer, fleet: Fleet
) -> None:
    spec = schedule("forbidden", ConcurrencyPolicy.FORBID)
    first, second = await runner_processes(fleet, "runner-a", "runner-b")
    one = await submit(nc, run_of(spec, hold_seconds=1.5))
    holder = (await until_running(observer, one)).runner_id
    two = await submit(nc, run_of(spec))  # the other runner takes it: the holder is full
    await observer.until_finished(two, within=20)

    skipped = final(observer, two)
    assert skipped.status is JobStatus.SKIPPED and skipped.runner_id != holder
    assert skipped.error_message == f"overlaps job {one} still running on runner {holder}"
    await observer.until_finished(one, within=20)
    three = await submit(nc, run_of(spec))
    await observer.until_finished(three, within=20)
    assert final(observer, three).status is JobStatus.COMPLETED, "released at once, no TTL"

    burst = []
    for _ in range(4):  # a run, and one that comes while it holds the claim
        held = await submit(nc, run_of(spec, hold_seconds=0.6))
        await until_running(observer, held)
        overlapping = await submit(nc, run_of(spec))
        await observer.until_finished(held, overlapping, within=20)
        burst += [held, overlapping]
    ran = spans(observer, burst)
    statuses = [final(observer, job).status for job in burst]
    assert JobStatus.SKIPPED in statuses and len(ran) >= 2, statuses
    for (_, end, before), (start, _, after) in zip(ran, ran[1:], strict=False):
        assert end <= start, f"{before} ran until {end}, {after} started at {start}"
    for _, _, job_id in ran:  # and no run's `running` event falls inside another's span
        at = running(observer, job_id)
        assert at is not None
        inside = [other for s, e, other in ran if other != job_id and s < at.at < e]
        assert not inside, f"{job_id} started while {inside} ran"
    skips = [
        await r.metric("natscron_runner_skipped_total", reason="overlap") for r in (first, second)
    ]
    assert sum(n or 0 for n in skips) == statuses.count(JobStatus.SKIPPED) + 1


async def test_replace_cancels_the_run_on_another_runner_and_takes_over(
    nc: Client, observer: Observer, fleet: Fleet
) -> None:
    spec = schedule("replaced", ConcurrencyPolicy.REPLACE)
    runners = await runner_processes(fleet, "runner-a", "runner-b")
    old = await submit(nc, run_of(spec, items=2, hold_seconds=60))
    holder = (await until_running(observer, old)).runner_id
    new = await submit(nc, run_of(spec, items=1))
    await observer.until_finished(old, new, within=20)

    replaced, replacement = final(observer, old), final(observer, new)
    assert replaced.status is JobStatus.CANCELLED and replaced.runner_id == holder
    assert replaced.cancelled_by == "overlap policy replace"
    assert replaced.error_message == f"replaced by job {new}"
    assert replaced.properties_scraped == 2
    assert replacement.status is JobStatus.COMPLETED and replacement.runner_id != holder
    assert replaced.completed_at is not None and replacement.started_at is not None
    assert replacement.started_at >= replaced.completed_at
    assert await claim_gone(nc, names.schedule_claim_key(spec.scheduled_job_id))
    taker = next(r for r in runners if r.name == replacement.runner_id)
    assert await taker.metric("natscron_runner_replacements_total", outcome="released") == 1


async def test_a_sigkilled_runners_claims_lapse_and_its_schedules_run_again(
    nc: Client, observer: Observer, fleet: Fleet, start_runner: StartRunner
) -> None:
    forbid = schedule("forbid-kill", ConcurrencyPolicy.FORBID)
    replace = schedule("replace-kill", ConcurrencyPolicy.REPLACE)
    (doomed,) = await runner_processes(fleet, "doomed", NATSCRON_RUNNER_CONCURRENCY="2")
    first_forbid = await submit(nc, run_of(forbid, hold_seconds=60))
    first_replace = await submit(nc, run_of(replace, hold_seconds=60))
    await until_running(observer, first_forbid)
    await until_running(observer, first_replace)
    survivor = await start_runner(runner_concurrency=3)

    await doomed.kill()
    killed = datetime.now(UTC)
    overlapping = await submit(nc, run_of(forbid))
    replacing = await submit(nc, run_of(replace))
    await observer.until_finished(overlapping, within=20)
    assert final(observer, overlapping).error_message == (
        f"overlaps job {first_forbid} still running on runner doomed"
    )
    await observer.until_finished(replacing, within=LAPSE_WITHIN + 15)
    took_over = final(observer, replacing)
    assert took_over.status is JobStatus.COMPLETED
    assert took_over.started_at is not None
    assert took_over.started_at - killed < timedelta(seconds=LAPSE_WITHIN)
    assert sample(survivor, "natscron_runner_replacements_total", outcome="lapsed") == 1

    await eventually(
        lambda: claim_gone(nc, names.schedule_claim_key(forbid.scheduled_job_id)),
        within=LAPSE_WITHIN,
        what="the dead runner's forbid claim lapsed",
    )
    again = await submit(nc, run_of(forbid))
    await observer.until_finished(again, within=20)
    assert final(observer, again).status is JobStatus.COMPLETED
    assert final(observer, again).runner_id == survivor.runner_id


# -- attempts ---------------------------------------------------------------------------


async def test_sigterm_during_a_run_hands_the_same_attempt_back(
    nc: Client, observer: Observer, fleet: Fleet, start_runner: StartRunner
) -> None:
    (stopping,) = await runner_processes(fleet, "stopping")
    job = await submit(nc, run_request(params={"items": 2, "hold_seconds": 2}))
    await until_running(observer, job)
    assert stopping.process is not None
    stopping.process.terminate()
    assert await stopping.process.wait() == 0, stopping.log_tail()

    after = await start_runner()
    await observer.until_finished(job, within=30)
    assert observer.steps(job) == [("running", 1), ("completed", 1)], "no attempt used up"
    done = final(observer, job)
    assert done.runner_id == after.runner_id and done.properties_scraped == 2
    assert sample(after, "natscron_runner_redelivered_total") == 1
    await jobs_queue_empty(nc)


async def test_a_failed_run_is_retried_as_a_new_message_after_its_backoff(
    nc: Client, observer: Observer, start_runner: StartRunner
) -> None:
    published: list[Msg] = []

    async def on_request(msg: Msg) -> None:
        published.append(msg)

    await nc.subscribe(f"{names.JOBS_RETRY_PREFIX}.>", cb=on_request)
    runner = await start_runner()
    job = await submit(
        nc, run_request(params={"fail_attempts": 1}, max_retries=1, retry_backoff_seconds=1.0)
    )
    await observer.until_finished(job)

    assert observer.steps(job) == [("running", 1), ("pending", 2), ("running", 2), ("completed", 2)]
    pending, second = observer.of(job)[1], observer.of(job)[2]
    retries = [m for m in published if RunRequest.model_validate_json(m.data).attempt == 2]
    assert len(retries) == 1
    retry = RunRequest.model_validate_json(retries[0].data)
    assert retries[0].headers == {"Nats-Msg-Id": f"{job}:2"}
    assert retry.not_before is not None and pending.job.not_before == retry.not_before
    assert retry.not_before - pending.at == timedelta(seconds=1)
    assert second.at >= retry.not_before - timedelta(seconds=0.05), "ran before its backoff"
    assert sample(runner, "natscron_runner_deferred_total", reason="not_before") >= 1
    await jobs_queue_empty(nc)


async def test_a_request_not_due_yet_runs_at_its_time_without_an_event_before(
    nc: Client, observer: Observer, start_runner: StartRunner
) -> None:
    await start_runner()
    due = datetime.now(UTC) + timedelta(seconds=1.5)
    job = await submit(nc, run_request(not_before=due))
    began = time.monotonic()
    await observer.until_finished(job)

    assert time.monotonic() - began >= 1.0
    assert observer.steps(job) == [("running", 1), ("completed", 1)]
    assert observer.of(job)[0].at >= due - timedelta(seconds=0.05)


async def test_a_schedule_claim_found_by_its_own_job_hands_the_message_back(
    nc: Client, observer: Observer, start_runner: StartRunner
) -> None:
    """A redelivery that finds its own job's claim (its previous delivery's runner died
    a moment ago) waits for the claim to lapse instead of skipping itself."""
    spec = schedule("self-claimed", ConcurrencyPolicy.FORBID)
    job = run_of(spec)
    running_kv = await nc.jetstream().key_value(names.KV_RUNNING)
    stale = ScheduleClaim(
        scheduled_job_id=spec.scheduled_job_id,
        job_id=job.job_id,
        runner_id="dead-runner",
        since=datetime.now(UTC),
    )
    await running_kv.create(
        names.schedule_claim_key(spec.scheduled_job_id), stale.model_dump_json().encode()
    )
    runner = await start_runner()
    await submit(nc, job)
    await observer.until_finished(job.job_id, within=LAPSE_WITHIN + 15)
    assert observer.steps(job.job_id) == [("running", 1), ("completed", 1)]
    assert sample(runner, "natscron_runner_deferred_total", reason="claimed") >= 1
