"""Acknowledged means stored: while job events stream into EVENTS, SIGKILL the MongoDB
server again and again, each time within 100 ms of a write the recorder just counted, and
check afterwards that every event the recorder acked is in MongoDB: each job completed,
and once the flushes are applied, each schedule's `run_count` and statistics equal to its
jobs.

The recorder runs as its own process, as deployed; the events are published straight into
EVENTS (pending, running, completed per job), so the only writer racing the kills is the
recorder. Set NATSCRON_STRESS_CPU=1 to run it with a CPU-bound process beside it, as on a
busy machine (how the lost write was first seen); NATSCRON_DURABILITY_KILLS sets how many
kills (default 6).

And a recorder SIGKILLed while it holds events of unfinished jobs and while a flush of
finished ones is due loses and doubles nothing: the held events come again, the flush's
runs are counted again from their jobs.
"""

import asyncio
import contextlib
import os
import random
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from pymongo.asynchronous.database import AsyncDatabase

from natscron.embedded import die_with_parent, free_port
from natscron_recorder.flushes import STALE_SECONDS
from natscron_shared.contract import names
from natscron_shared.contract.enums import JobStatus, Priority, Trigger
from natscron_shared.contract.job_stats import ALL_TIME
from natscron_shared.contract.messages import JobEvent, RunRequest
from natscron_shared.contract.storage import Document
from natscron_shared.runtime.mongo import database_of, new_client
from tests.processes import Fleet, RestartableMongo, first_change
from tests.servers import Server, with_database
from tests.waiting import eventually

pytestmark = pytest.mark.integration

DATABASE = "durability"
SCHEDULES = [f"durable-{n}" for n in range(5)]
JOBS_PER_TICK = 10
TICK_SECONDS = 0.1
KILLS = int(os.environ.get("NATSCRON_DURABILITY_KILLS") or 6)
KILL_WITHIN_SECONDS = 0.1
DOWN_SECONDS = (0.3, 1.5)
RUNS_FINISHED = "natscron_recorder_runs_finished_total"


def events_of(number: int, at: datetime) -> list[JobEvent]:
    request = RunRequest(
        job_id=f"job-{number:06d}",
        scheduled_job_id=SCHEDULES[number % len(SCHEDULES)],
        trigger=Trigger.SCHEDULED,
        priority=Priority.NORMAL,
        scheduled_for=at,
        created_at=at,
        scraper="noop",
    )
    started = at + timedelta(milliseconds=5)
    done = started + timedelta(milliseconds=number % 97 + 1)
    return [
        JobEvent(job=request, status=JobStatus.PENDING, attempt=1, at=at),
        JobEvent(job=request, status=JobStatus.RUNNING, attempt=1, at=started, started_at=started),
        JobEvent(
            job=request,
            status=JobStatus.COMPLETED,
            attempt=1,
            at=done,
            started_at=started,
            completed_at=done,
            duration_ms=round((done - started).total_seconds() * 1000),
        ),
    ]


async def publish(js: JetStreamContext, events: list[JobEvent]) -> None:
    for event in events:
        await js.publish(
            names.job_event_subject(event.job.job_id),
            event.model_dump_json().encode(),
            stream=names.STREAM_EVENTS,
        )


async def publish_jobs(js: JetStreamContext, stop: asyncio.Event) -> int:
    """Publishes jobs' events until `stop`; the number of jobs published."""
    published = 0
    while not stop.is_set():
        at = datetime.now(UTC)
        batch = [events_of(published + n, at) for n in range(JOBS_PER_TICK)]
        for events in zip(*batch, strict=True):  # every job's pending, then running, ...
            await publish(js, list(events))
        published += JOBS_PER_TICK
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), TICK_SECONDS)
    return published


@contextlib.asynccontextmanager
async def busy_core() -> AsyncIterator[None]:
    """A CPU-bound process beside the test, when NATSCRON_STRESS_CPU is set."""
    if not os.environ.get("NATSCRON_STRESS_CPU"):
        yield
        return
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "while True: pass",
        stdin=subprocess.DEVNULL,
        preexec_fn=die_with_parent(),
    )
    try:
        yield
    finally:
        process.kill()
        await process.wait()


async def drained(js: JetStreamContext) -> tuple[int, int]:
    info = await js.consumer_info(names.STREAM_EVENTS, names.RECORDER_EVENTS_CONSUMER)
    return info.num_pending or 0, info.num_ack_pending or 0


@pytest.mark.timeout(300)
async def test_no_acked_event_is_lost_to_mongodb_kills_right_after_writes(
    nats_server: Server, nc: Client, tmp_path: Path
) -> None:
    rng = random.Random(os.environ.get("NATSCRON_CHAOS_SEED"))
    mongo = RestartableMongo(tmp_path / "mongo-server", port=free_port())
    fleet = Fleet(
        log_dir=tmp_path,
        base_env={
            "NATSCRON_NATS_URL": nats_server.url,
            "NATSCRON_MONGO_URL": mongo.url(DATABASE),
            "NATSCRON_DATA_DIR": str(tmp_path / "data"),
        },
        mongo=mongo,
    )
    recorder = fleet.service("recorder", "recorder")
    js = nc.jetstream()
    client = new_client(mongo.url(DATABASE))
    stop = asyncio.Event()
    try:
        await mongo.start()
        await recorder.start()
        await recorder.wait_ready()
        async with busy_core():
            publisher = asyncio.create_task(publish_jobs(js, stop))
            for _ in range(KILLS):
                await first_change(
                    lambda: recorder.metric(RUNS_FINISHED), within=60, what=RUNS_FINISHED
                )
                await asyncio.sleep(rng.uniform(0, KILL_WITHIN_SECONDS))
                await mongo.kill()
                await asyncio.sleep(rng.uniform(*DOWN_SECONDS))
                await mongo.start()
            stop.set()
            published = await publisher
            await eventually(lambda: drained(js), lambda d: d == (0, 0), within=120, what="drained")

        db = database_of(client)
        # Every flush applied, a killed write's by its recorder's recount of it.
        await eventually(
            lambda: db["recorder_flushes"].count_documents({}),
            lambda n: n == 0,
            within=90,
            what="no open flush",
        )
        statuses = {
            doc["job_id"]: doc["status"]
            async for doc in db["jobs"].find({}, {"_id": 0, "job_id": 1, "status": 1})
        }
        lost = [
            f"job-{n:06d}: {statuses.get(f'job-{n:06d}', 'missing')}"
            for n in range(published)
            if statuses.get(f"job-{n:06d}") != JobStatus.COMPLETED.value
        ]
        assert not lost, f"{len(lost)} of {published} acked jobs not completed: {lost[:10]}"
        for index, scheduled_job_id in enumerate(SCHEDULES):
            runs = len(range(index, published, len(SCHEDULES)))
            schedule = await db["scheduled_jobs"].find_one({"scheduled_job_id": scheduled_job_id})
            stats = await db["job_stats"].find_one({"_id": f"{scheduled_job_id}|{ALL_TIME}"})
            assert schedule is not None and stats is not None
            assert (schedule["run_count"], stats["runs"], stats["completed"]) == (runs,) * 3
    except BaseException:
        print(fleet.log_tails())
        raise
    finally:
        stop.set()
        await client.close()
        await fleet.kill_all()
        assert fleet.survivors() == []


async def check_exact(db: AsyncDatabase[Document], jobs: int) -> None:
    """Jobs 0..`jobs`-1 completed, each schedule's history and statistics counting each once."""
    docs = await db["jobs"].find({}, {"_id": 0, "job_id": 1, "status": 1}).to_list()
    assert sorted(d["job_id"] for d in docs) == [f"job-{n:06d}" for n in range(jobs)]
    assert {d["status"] for d in docs} == {JobStatus.COMPLETED.value}
    for index, scheduled_job_id in enumerate(SCHEDULES):
        runs = len(range(index, jobs, len(SCHEDULES)))
        schedule = await db["scheduled_jobs"].find_one({"scheduled_job_id": scheduled_job_id})
        assert schedule is not None
        hours = await db["job_stats"].find({"scope": scheduled_job_id}).to_list()
        all_time = [d for d in hours if d["period"] == ALL_TIME]
        assert len(all_time) == 1
        summed = sum(d["runs"] for d in hours if d["period"] != ALL_TIME)
        found = (schedule["run_count"], all_time[0]["runs"], all_time[0]["duration_count"], summed)
        assert found == (runs,) * 4, scheduled_job_id
    system = await db["job_stats"].find_one({"_id": f"*|{ALL_TIME}"})
    assert system is not None and (system["runs"], system["completed"]) == (jobs, jobs)


@pytest.mark.timeout(240)
async def test_a_recorder_killed_holding_events_and_with_a_flush_due_counts_each_run_once(
    nats_server: Server, mongo_server: Server, nc: Client, tmp_path: Path
) -> None:
    database = f"kills_{os.getpid()}_{random.randrange(10**6)}"
    fleet = Fleet(
        log_dir=tmp_path,
        base_env={
            "NATSCRON_NATS_URL": nats_server.url,
            "NATSCRON_MONGO_URL": with_database(mongo_server.url, database),
            "NATSCRON_DATA_DIR": str(tmp_path / "data"),
            # A flush never comes before the kill; the hold never ends before it either.
            "NATSCRON_RECORDER_FLUSH_SECONDS": "60",
            "NATSCRON_RECORDER_HOLD_SECONDS": "20",
        },
    )
    recorder = fleet.service("recorder", "recorder")
    restarted = fleet.service(
        "recorder-restarted",
        "recorder",
        NATSCRON_RECORDER_FLUSH_SECONDS="1",
        NATSCRON_RECORDER_HOLD_SECONDS="2",
    )
    js = nc.jetstream()
    client = new_client(with_database(mongo_server.url, database))
    db = database_of(client)
    at = datetime.now(UTC)
    finished = [events_of(n, at) for n in range(40)]
    unfinished = [events_of(n, at) for n in range(40, 60)]
    try:
        await recorder.start()
        await recorder.wait_ready()
        await publish(js, [event for events in finished for event in events])
        await publish(js, [event for events in unfinished for event in events[:2]])
        await eventually(
            lambda: recorder.metric(RUNS_FINISHED), lambda n: n == 40, what="finished written"
        )
        await eventually(
            lambda: recorder.metric("natscron_recorder_held_events"),
            lambda n: n == 40,
            what="the unfinished jobs' events held",
        )
        assert await db["recorder_flushes"].count_documents({}) == 1  # due, not applied
        assert await db["jobs"].count_documents({}) == 40  # the held ones not written
        await recorder.kill()

        await publish(js, [events[2] for events in unfinished])
        await restarted.start()
        await restarted.wait_ready()
        await eventually(lambda: drained(js), lambda d: d == (0, 0), within=60, what="drained")
        await eventually(
            lambda: db["recorder_flushes"].count_documents({}),
            lambda n: n == 0,
            within=STALE_SECONDS + 90,
            what="the killed recorder's flush counted again, the new one applied",
        )
        await check_exact(db, 60)
    except BaseException:
        print(fleet.log_tails())
        raise
    finally:
        await client.close()
        await fleet.kill_all()
        assert fleet.survivors() == []
