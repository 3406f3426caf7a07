"""Chaos: while 10 schedules fire every second into two runners, SIGKILL a runner, the
recorder and the MongoDB server, restarting each, then check that nothing was lost,
doubled or left behind.

MongoDB is killed several times, at different moments (a random phase of the second,
and within milliseconds of a commit the recorder just made): losing a write is a race,
and one kill that happens to miss it proves little. Afterwards, for every schedule:

- every second between its first and last slot has exactly one `jobs` document (catchup
  `all` merges no slot away; the job id is deterministic per slot), and it is completed;
- `run_count` and the `job_stats` counters (the schedule's and the system's, all-time and
  the sum of the hours) equal the number of those runs exactly.

Set NATSCRON_CHAOS_SEED to replay a run's choice of moments; the seed is printed.
"""

import asyncio
import contextlib
import os
import random
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError
from pymongo.asynchronous.database import AsyncDatabase

from natscron.embedded import free_port
from natscron_shared.contract import names
from natscron_shared.contract.enums import Catchup, JobStatus, Priority, ScheduledJobStatus
from natscron_shared.contract.job_ids import scheduled_job_run_id
from natscron_shared.contract.job_stats import ALL_TIME, SYSTEM_SCOPE
from natscron_shared.contract.messages import JobEvent, RunRequest
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.contract.pools import DEFAULT_POOL
from natscron_shared.contract.storage import Document
from natscron_shared.contract.ticker_state import SlotState
from natscron_shared.nats.jetstream_layout import RUNNER_ACK_WAIT_SECONDS
from natscron_shared.nats.schedule_bucket import put_schedules
from natscron_shared.runtime.mongo import database_of, new_client
from tests.processes import Fleet, RestartableMongo, ServiceProcess, first_change, promptly
from tests.servers import Server
from tests.waiting import eventually

pytestmark = pytest.mark.integration

SCHEDULE_IDS = [f"chaos-{n:02d}" for n in range(10)]
EVERY_SECOND = "* * * * * *"
SCRAPE_SECONDS = 0.2
"""Long enough that a runner killed at any moment is likely to be in the middle of a job."""
DATABASE = "chaos"
RECORDER_DOWN_SECONDS = 2.0
"""How long the recorder stays dead: the fault itself, while runs go on finishing."""
MONGO_DOWN_SECONDS = (1.0, 3.0)
BETWEEN_STEPS_SECONDS = (2.0, 4.0)
STEP_WITHIN = 30.0
WARM_UP_WITHIN = 90.0
"""Until the first runs are recorded: a cold recorder and MongoDB can take longer than a step."""
DRAIN_WITHIN = RUNNER_ACK_WAIT_SECONDS + 20.0
"""A job the killed runner held comes back only when its JOBS ack wait (10 s) runs out,
counted from its delivery, which was before the pause."""

RUNS_FINISHED = "natscron_recorder_runs_finished_total"
MONGO_ERRORS = "natscron_recorder_mongo_errors_total"
RUNNER_RUNNING = "natscron_runner_running"
REDELIVERED = "natscron_runner_redelivered_total"
CONSUMERS = (
    # JOBS first: a runner acks a job only after its events are stored in EVENTS, so
    # EVENTS read after an empty JOBS holds every event there will be.
    (names.STREAM_JOBS, names.runner_consumer(DEFAULT_POOL, Priority.IMMEDIATE)),
    (names.STREAM_JOBS, names.runner_consumer(DEFAULT_POOL, Priority.NORMAL)),
    (names.STREAM_EVENTS, names.RECORDER_EVENTS_CONSUMER),
    (names.STREAM_ITEMS, names.RECORDER_ITEMS_CONSUMER),
)
UNFINISHED = [JobStatus.PENDING.value, JobStatus.RUNNING.value]


def spec(scheduled_job_id: str, status: ScheduledJobStatus) -> ScheduledJob:
    return ScheduledJob(
        scheduled_job_id=scheduled_job_id,
        name=f"Chaos {scheduled_job_id}",
        status=status,
        cron_expression=EVERY_SECOND,
        scraper="noop",
        params={"delay_seconds": SCRAPE_SECONDS},
        catchup=Catchup.ALL,
        max_retries=3,
        retry_backoff_seconds=1,
    )


@dataclass
class Published:
    """The run requests the ticker published, as a core subscriber to `jobs.run.>` sees
    them: the slots each schedule was owed, whatever MongoDB later says. Retries are not
    among them: runners publish those on `jobs.retry.<lane>`."""

    slots: dict[str, list[datetime]] = field(default_factory=lambda: defaultdict(list))

    async def on_request(self, msg: Msg) -> None:
        request = RunRequest.model_validate_json(msg.data)
        if request.scheduled_job_id is not None and request.scheduled_for is not None:
            self.slots[request.scheduled_job_id].append(request.scheduled_for)


@dataclass
class Chaos:
    """The chaos steps, paced by a seeded rng, with a timestamped log of what was done."""

    mongo: RestartableMongo
    runner: ServiceProcess
    recorder: ServiceProcess
    rng: random.Random
    started: float = field(default_factory=time.monotonic)
    log: list[str] = field(default_factory=list)

    def note(self, what: str) -> None:
        wall = datetime.now(UTC).strftime("%H:%M:%S.%f")[:-3]
        self.log.append(f"{time.monotonic() - self.started:7.3f}s {wall}  {what}")

    async def pace(self) -> None:
        """Let the schedules fire for a while: the sleep is the load under test."""
        await asyncio.sleep(self.rng.uniform(*BETWEEN_STEPS_SECONDS))

    async def runs_recorded(self) -> float | None:
        self.recorder.ensure_alive()
        return await self.recorder.metric(RUNS_FINISHED)

    async def kill_runner_mid_job(self) -> None:
        """Kill runner-1 on the rising edge of its running-jobs gauge: a job started a
        moment ago still has most of its `SCRAPE_SECONDS` to go, so it is interrupted."""

        async def running() -> float | None:
            return await self.runner.metric(RUNNER_RUNNING)

        await eventually(running, lambda n: n == 0, within=STEP_WITHIN, what="runner-1 idle")
        await promptly(running, lambda n: (n or 0) >= 1, STEP_WITHIN, "runner-1 in a job")
        await self.runner.kill()
        self.note("SIGKILL runner-1 (a job had just started)")
        await self.runner.start()
        await self.runner.wait_ready()
        self.note("runner-1 restarted and ready")

    async def kill_recorder(self) -> None:
        await asyncio.sleep(self.rng.uniform(0, 1))
        await self.recorder.kill()
        self.note("SIGKILL recorder")
        await asyncio.sleep(RECORDER_DOWN_SECONDS)
        await self.recorder.start()
        await self.recorder.wait_ready()
        self.note("recorder restarted and ready")
        await self.recording_again()

    async def at_random_phase(self) -> str:
        delay = self.rng.uniform(0, 1)
        await asyncio.sleep(delay)
        return f"at a random phase (+{delay:.3f}s)"

    def right_after_commit(self, delay: float) -> Callable[[], Awaitable[str]]:
        async def moment() -> str:
            await first_change(self.runs_recorded, within=STEP_WITHIN, what=RUNS_FINISHED)
            await asyncio.sleep(delay)
            return f"{delay * 1000:.0f} ms after the recorder counted a commit"

        return moment

    async def kill_mongo(self, moment: Callable[[], Awaitable[str]]) -> None:
        when = await moment()
        await self.mongo.kill()
        self.note(f"SIGKILL MongoDB {when}")
        await asyncio.sleep(self.rng.uniform(*MONGO_DOWN_SECONDS))
        status, body = await self.recorder.get("/readyz")
        self.note(f"recorder /readyz before the restart: {status} {body.strip()[:90]}")
        await self.mongo.start()
        self.note("MongoDB restarted")
        await self.recorder.wait_ready()
        await self.recording_again()

    async def run(self) -> None:
        """The whole sequence: a runner, the recorder, then MongoDB four times."""
        await first_change(self.runs_recorded, within=WARM_UP_WITHIN, what=RUNS_FINISHED)
        self.note("runs are being recorded")
        await self.kill_runner_mid_job()
        await self.pace()
        await self.kill_recorder()
        for moment in (
            self.at_random_phase,
            self.right_after_commit(0.0),
            self.at_random_phase,
            self.right_after_commit(self.rng.uniform(0.0, 0.03)),
        ):
            await self.pace()
            await self.kill_mongo(moment)
        await self.pace()

    async def recording_again(self) -> None:
        """Until the recorder commits runs again: the next step should hit a working system."""
        await first_change(self.runs_recorded, within=STEP_WITHIN, what=RUNS_FINISHED)
        self.note("recorder committing runs again")


@dataclass
class Backlog:
    """What is still to be done: per consumer (pending, unacked), the jobs whose document
    is not final yet, and the recorder flushes not applied yet."""

    consumers: dict[str, tuple[int, int]]
    unfinished_jobs: list[str]
    open_flushes: int

    @property
    def empty(self) -> bool:
        busy = any(pending or unacked for pending, unacked in self.consumers.values())
        return not busy and not self.unfinished_jobs and not self.open_flushes


async def backlog(js: JetStreamContext, db: AsyncDatabase[Document]) -> Backlog:
    consumers = {}
    for stream, durable in CONSUMERS:
        info = await js.consumer_info(stream, durable)
        consumers[durable] = (info.num_pending or 0, info.num_ack_pending or 0)
    unfinished = [
        doc["job_id"]
        async for doc in db["jobs"].find({"status": {"$in": UNFINISHED}}, {"job_id": 1})
    ]
    return Backlog(consumers, unfinished, await db["recorder_flushes"].count_documents({}))


async def events_in_stream(js: JetStreamContext, job_id: str) -> list[str]:
    """What EVENTS holds for one job, one line per event: the evidence, when its document
    is stuck, of whether the recorder was ever given the final event."""
    subscription = await js.pull_subscribe(
        names.job_event_subject(job_id), stream=names.STREAM_EVENTS
    )
    lines = []
    try:
        with contextlib.suppress(TimeoutError):
            while True:
                for msg in await subscription.fetch(batch=50, timeout=0.5):
                    event = JobEvent.model_validate_json(msg.data)
                    lines.append(
                        f"seq {msg.metadata.sequence.stream} {event.status.value}"
                        f" attempt {event.attempt} at {event.at.isoformat()}"
                        f" runner {event.runner_id}"
                    )
                    await msg.ack()
    finally:
        await subscription.unsubscribe()
    return lines


async def drain(js: JetStreamContext, db: AsyncDatabase[Document], chaos: Chaos) -> list[str]:
    """Wait until nothing is left to do; if that never happens, what is stuck, with the
    events EVENTS holds for (some of) the stuck jobs."""
    try:
        drained = await eventually(
            lambda: backlog(js, db), lambda b: b.empty, within=DRAIN_WITHIN, what="drained"
        )
    except AssertionError as not_drained:
        problems = [str(not_drained)]
        for job_id in (await backlog(js, db)).unfinished_jobs[:5]:
            problems += [f"EVENTS of {job_id}:", *await events_in_stream(js, job_id)]
        return problems
    chaos.note(f"drained: {drained}")
    return []


async def paused_everywhere(js: JetStreamContext) -> list[str]:
    """The schedules the leading ticker has not yet saved as inactive in `ticker_state`.
    It saves that only after any firing of the job in progress has been published."""
    states = await js.key_value(names.KV_TICKER_STATE)
    still_active = []
    for scheduled_job_id in SCHEDULE_IDS:
        try:
            entry = await states.get(scheduled_job_id)
        except KeyNotFoundError:
            still_active.append(scheduled_job_id)
            continue
        if SlotState.from_json(entry.value or b"").active:
            still_active.append(scheduled_job_id)
    return still_active


def every_second(slots: list[datetime]) -> list[datetime]:
    first, last = min(slots), max(slots)
    return [first + timedelta(seconds=n) for n in range(int((last - first).total_seconds()) + 1)]


async def check_records(db: AsyncDatabase[Document], published: Published) -> list[str]:
    """Every way the stored records differ from the published slots, one line each."""
    problems: list[str] = []
    jobs: dict[str, list[Document]] = defaultdict(list)
    async for doc in db["jobs"].find({}, {"_id": 0}):
        jobs[doc.get("scheduled_job_id") or "(none)"].append(doc)
    schedules = {d["scheduled_job_id"]: d async for d in db["scheduled_jobs"].find({})}
    stats = [d async for d in db["job_stats"].find({})]
    if strays := set(jobs) - set(SCHEDULE_IDS):
        problems.append(f"jobs of unknown schedules: {sorted(strays)}")
    total = 0
    for scheduled_job_id in SCHEDULE_IDS:
        if not published.slots[scheduled_job_id]:
            problems.append(f"{scheduled_job_id}: the ticker published no job at all")
            continue
        owed = every_second(published.slots[scheduled_job_id])
        problems += _check_schedule(
            scheduled_job_id,
            owed,
            published.slots[scheduled_job_id],
            jobs[scheduled_job_id],
            schedules.get(scheduled_job_id, {}),
            [d for d in stats if d.get("scope") == scheduled_job_id],
        )
        total += sum(d["status"] == JobStatus.COMPLETED.value for d in jobs[scheduled_job_id])
    problems += _check_stats(
        SYSTEM_SCOPE, total, [d for d in stats if d.get("scope") == SYSTEM_SCOPE]
    )
    return problems


def _check_schedule(
    scheduled_job_id: str,
    owed: list[datetime],
    published: list[datetime],
    docs: list[Document],
    schedule: Document,
    stats: list[Document],
) -> list[str]:
    name = scheduled_job_id
    problems = []
    if sorted(published) != owed:
        problems.append(f"{name}: the ticker did not publish each slot once: {_gaps(published)}")
    slots = Counter(d["scheduled_for"] for d in docs)
    if missing := sorted(set(owed) - set(slots)):
        problems.append(f"{name}: {len(missing)} slots without a job: {_times(missing)}")
    if extra := sorted(set(slots) - set(owed)):
        problems.append(f"{name}: jobs outside the window: {_times(extra)}")
    if doubled := sorted(slot for slot, n in slots.items() if n > 1):
        problems.append(f"{name}: slots with several jobs: {_times(doubled)}")
    if strange := [d["job_id"] for d in docs if d["job_id"] != _job_id(name, d)]:
        problems.append(f"{name}: job ids not derived from their slot: {strange[:5]}")
    if not_done := [
        f"{d['job_id']} {d['status']} attempt {d['attempt']}"
        for d in docs
        if d["status"] != JobStatus.COMPLETED.value
    ]:
        problems.append(f"{name}: {len(not_done)} jobs not completed: {not_done[:10]}")
    runs = sum(d["status"] == JobStatus.COMPLETED.value for d in docs)
    history = {k: schedule.get(k) for k in ("run_count", "last_run_at", "last_run_status")}
    latest = max((d["completed_at"] for d in docs if d.get("completed_at")), default=None)
    expected = {"run_count": runs, "last_run_at": latest, "last_run_status": "completed"}
    if history != expected:
        problems.append(f"{name}: run history {history}, expected {expected}")
    return problems + _check_stats(name, runs, stats)


def _check_stats(scope: str, runs: int, stats: list[Document]) -> list[str]:
    """All-time counters equal `runs`, and so do the sums over the hour documents."""
    counters = ("runs", "completed", "failed", "duration_count")
    expected = {"runs": runs, "completed": runs, "failed": 0, "duration_count": runs}
    all_time = [d for d in stats if d.get("period") == ALL_TIME]
    hours = [d for d in stats if d.get("period") != ALL_TIME]
    found = {c: sum(int(d.get(c, 0)) for d in all_time) for c in counters}
    summed = {c: sum(int(d.get(c, 0)) for d in hours) for c in counters}
    problems = []
    if len(all_time) != 1 or found != expected:
        problems.append(
            f"stats {scope}|{ALL_TIME}: {found} in {len(all_time)} docs, not {expected}"
        )
    if summed != expected:
        problems.append(f"stats {scope}: hours add up to {summed}, not {expected}")
    return problems


def _job_id(scheduled_job_id: str, doc: Document) -> str:
    return scheduled_job_run_id(scheduled_job_id, doc["scheduled_for"])


def _times(slots: list[datetime]) -> str:
    shown = ", ".join(slot.strftime("%H:%M:%S") for slot in slots[:10])
    return shown + (f" ... ({len(slots)})" if len(slots) > 10 else "")


def _gaps(published: list[datetime]) -> str:
    counts = Counter(published)
    missing = sorted(set(every_second(published)) - set(counts))
    doubled = sorted(slot for slot, n in counts.items() if n > 1)
    return f"missing {_times(missing)}; doubled {_times(doubled)}"


@pytest.mark.timeout(300)
async def test_kills_lose_no_slot_double_no_run_and_leave_no_job_behind(
    nats_server: Server, nc: Client, tmp_path: Path
) -> None:
    seed = int(os.environ.get("NATSCRON_CHAOS_SEED") or random.randrange(2**32))
    print(f"chaos seed {seed} (NATSCRON_CHAOS_SEED={seed} replays its choice of moments)")
    mongo = RestartableMongo(tmp_path / "mongo-server", port=free_port())
    fleet = Fleet(
        log_dir=tmp_path,
        base_env={
            "NATSCRON_NATS_URL": nats_server.url,
            "NATSCRON_MONGO_URL": mongo.url(DATABASE),
            "NATSCRON_DATA_DIR": str(tmp_path / "data"),
            "NATSCRON_SHUTDOWN_GRACE_SECONDS": "5",
            "NATSCRON_RUNNER_CONCURRENCY": "4",
        },
        mongo=mongo,
    )
    recorder = fleet.service("recorder", "recorder")
    runners = [
        fleet.service(f"runner-{n}", "runner", NATSCRON_RUNNER_ID=f"runner-{n}") for n in (1, 2)
    ]
    ticker = fleet.service("ticker", "ticker")
    chaos = Chaos(mongo=mongo, runner=runners[0], recorder=recorder, rng=random.Random(seed))
    js = nc.jetstream()
    published = Published()
    subscription = await nc.subscribe(f"{names.JOBS_RUN_PREFIX}.>", cb=published.on_request)
    client = new_client(mongo.url(DATABASE))
    try:
        await mongo.start()
        for service in (recorder, *runners, ticker):
            await service.start()
        for service in (recorder, *runners, ticker):
            await service.wait_ready()
        chaos.started = time.monotonic()
        await put_schedules(js, [spec(i, ScheduledJobStatus.ACTIVE) for i in SCHEDULE_IDS])
        chaos.note("10 schedules put, firing every second")
        await chaos.recording_again()
        await chaos.run()
        mongo_errors = await recorder.metric(MONGO_ERRORS)

        await put_schedules(js, [spec(i, ScheduledJobStatus.PAUSED) for i in SCHEDULE_IDS])
        await eventually(lambda: paused_everywhere(js), lambda left: not left, what="paused")
        await nc.flush()  # every run request published so far has reached `published`
        chaos.note("all 10 schedules paused")
        db = database_of(client)
        problems = await drain(js, db, chaos)
        problems += await check_records(db, published)
        problems += [
            f"{s.name} died (exit {s.process.returncode}) without being killed"
            for s in fleet.services
            if s.process is not None and s.process.returncode is not None
        ]
        # A job the killed runner held is delivered again as the same attempt (a death is
        # no attempt), so the runners' redelivery counters are the evidence it was hit.
        redelivered = sum([await r.metric(REDELIVERED) or 0 for r in runners])
        chaos.note(
            f"{sum(len(s) for s in published.slots.values())} jobs published;"
            f" {redelivered:.0f} delivered again; recorder MongoDB errors: {mongo_errors}"
        )
        assert not problems, "\n".join(problems)
        assert redelivered >= 1, "the runner was killed in a job, yet no job was redelivered"
    except BaseException:
        print(fleet.log_tails())
        raise
    finally:
        print("\n".join(chaos.log))
        await subscription.unsubscribe()
        await client.close()
        await fleet.kill_all()
        assert fleet.survivors() == []
