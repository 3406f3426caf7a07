"""Runner SIGKILL: how long the jobs a killed runner was running take to complete elsewhere.

One ticker, two runners and one recorder, each its own process, on the embedded
nats-server and SecantusDB. N schedules fire every second into scrapes of S seconds, so
both runners are always in jobs. Once runner-1 is in at least N/2 jobs at once, it is
killed with SIGKILL. Its interrupted jobs are those it sent a `running` event for and never ended;
for them, per run:

- kill -> completed: the `at` of each one's `completed` event (on runner-2) minus the
  moment of the kill: first, median and last;
- doubled: an interrupted job that ran more than once on runner-2 or ended twice;
- recorded: how many of them MongoDB holds as completed on runner-2 afterwards.

`--ack-wait` sets the runners' ack wait (`NATSCRON_RUNNER_ACK_WAIT_SECONDS`) that
`natscron provision` gives their consumers: 60 is the layout before progress acks.
`--policy forbid` (or `replace`) makes the runs also hold their schedule's claim in KV
`running`, which a dead runner keeps until the claim TTL (`NATSCRON_CLAIM_TTL_SECONDS`) lapses.

Run: `.venv/bin/python bench/runner_kill.py --repeat 2`.
"""

import argparse
import asyncio
import signal
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from nats.aio.client import Client
from nats.aio.msg import Msg
from pymongo import AsyncMongoClient

from bench.processes import Stack
from natscron_shared.contract import names
from natscron_shared.contract.enums import ConcurrencyPolicy, JobStatus, ScheduledJobStatus
from natscron_shared.contract.messages import JobEvent
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.contract.storage import Document
from natscron_shared.nats.schedule_bucket import put_schedules
from natscron_shared.runtime.mongo import database_of, new_client

KILLED = "runner-1"
SURVIVOR = "runner-2"
WAIT_SECONDS = 180.0


class Events:
    """Every job event, as a core subscriber to `jobs.events.>` sees it."""

    def __init__(self) -> None:
        self.by_job: dict[str, list[JobEvent]] = defaultdict(list)

    async def on_event(self, msg: Msg) -> None:
        event = JobEvent.model_validate_json(msg.data)
        self.by_job[event.job.job_id].append(event)

    def started_by(self, runner_id: str) -> list[str]:
        return [job for job, events in self.by_job.items() if self.ran(job, runner_id)]

    def ran(self, job_id: str, runner_id: str) -> int:
        """How many times `runner_id` started the job."""
        return sum(
            e.status is JobStatus.RUNNING and e.runner_id == runner_id for e in self.by_job[job_id]
        )

    def ends(self, job_id: str) -> list[JobEvent]:
        return [e for e in self.by_job[job_id] if e.status.is_terminal]

    def interrupted(self) -> list[str]:
        """The jobs runner-1 started and never ended: those it was in when killed."""
        return [
            job
            for job in self.started_by(KILLED)
            if not any(e.runner_id == KILLED for e in self.ends(job))
        ]


async def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {WAIT_SECONDS:.0f} s")
        await asyncio.sleep(0.01)


def spec(
    index: int, scrape_seconds: float, status: ScheduledJobStatus, policy: ConcurrencyPolicy
) -> ScheduledJob:
    return ScheduledJob(
        scheduled_job_id=f"kill-{index:03d}",
        name=f"runner kill {index}",
        status=status,
        cron_expression="* * * * * *",
        scraper="noop",
        params={"delay_seconds": scrape_seconds},
        concurrency_policy=policy,
    )


async def recorded_on_survivor(mongo: AsyncMongoClient[Document], jobs: list[str]) -> int:
    """How many of `jobs` MongoDB holds as completed on runner-2, once it holds them all."""
    collection = database_of(mongo)["jobs"]
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        docs = [d async for d in collection.find({"job_id": {"$in": jobs}})]
        final = [d for d in docs if d["status"] not in ("pending", "running")]
        if len(final) == len(jobs) or time.monotonic() > deadline:
            return sum(
                d["status"] == JobStatus.COMPLETED.value and d.get("runner_id") == SURVIVOR
                for d in final
            )
        await asyncio.sleep(0.2)


async def one_run(
    schedules: int,
    scrape_seconds: float,
    concurrency: int,
    ack_wait: float,
    policy: ConcurrencyPolicy,
) -> dict[str, float | int | str]:
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(Path(tmp), None)
        nc = Client()
        events = Events()
        try:
            await stack.start_servers()
            assert stack.nats is not None and stack.mongo is not None
            stack.settings["NATSCRON_RUNNER_ACK_WAIT_SECONDS"] = f"{ack_wait:g}"
            stack.settings["NATSCRON_RUNNER_CONCURRENCY"] = str(concurrency)
            await stack.run_command("provision")
            await nc.connect(stack.nats.url)
            js = nc.jetstream()
            await nc.subscribe(f"{names.JOBS_EVENTS_PREFIX}.>", cb=events.on_event)
            await stack.start_service("recorder", "recorder")
            for runner in (KILLED, SURVIVOR):
                await stack.start_service(runner, "runner", {"NATSCRON_RUNNER_ID": runner})
            await stack.start_service("ticker", "ticker")
            specs = [
                spec(i, scrape_seconds, ScheduledJobStatus.ACTIVE, policy) for i in range(schedules)
            ]
            await put_schedules(js, specs)
            busy = max(1, schedules // 2)
            await wait_for(lambda: len(events.interrupted()) >= busy, f"runner-1 in {busy} jobs")
            killed = stack.service(KILLED)
            killed.process.send_signal(signal.SIGKILL)
            await killed.process.wait()
            killed_at = datetime.now(UTC)
            await wait_for(
                lambda: all(events.ends(job) for job in events.interrupted()),
                "the killed runner's jobs ended elsewhere",
            )
            paused = [
                spec(i, scrape_seconds, ScheduledJobStatus.PAUSED, policy) for i in range(schedules)
            ]
            await put_schedules(js, paused)
            interrupted = events.interrupted()
            after = sorted(
                (events.ends(job)[0].at - killed_at).total_seconds() for job in interrupted
            )
            doubled = sum(
                len(events.ends(job)) > 1 or events.ran(job, SURVIVOR) > 1 for job in interrupted
            )
            mongo = new_client(stack.mongo.url)
            try:
                recorded = await recorded_on_survivor(mongo, interrupted)
            finally:
                await mongo.close()
        finally:
            if nc.is_connected:
                await nc.close()
            await stack.stop()
    return {
        "interrupted": len(interrupted),
        "first_s": round(after[0], 2),
        "median_s": round(statistics.median(after), 2),
        "last_s": round(after[-1], 2),
        "doubled": doubled,
        "recorded": recorded,
    }


COLUMNS = ("interrupted", "first_s", "median_s", "last_s", "doubled", "recorded")


async def bench(
    repeat: int,
    schedules: int,
    scrape_seconds: float,
    concurrency: int,
    ack_wait: float,
    policy: ConcurrencyPolicy,
) -> None:
    print(
        f"ack wait {ack_wait:g} s, {schedules} {policy.value} schedules every second, scrapes of"
        f" {scrape_seconds:g} s, two runners at concurrency {concurrency}",
        flush=True,
    )
    print(" run" + "".join(f"{column:>13}" for column in COLUMNS), flush=True)
    for run in range(1, repeat + 1):
        row = await one_run(schedules, scrape_seconds, concurrency, ack_wait, policy)
        print(f"{run:>4}" + "".join(f"{row[column]:>13}" for column in COLUMNS), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--schedules", type=int, default=20)
    parser.add_argument("--scrape-seconds", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--ack-wait", type=float, default=10.0)
    parser.add_argument(
        "--policy",
        type=ConcurrencyPolicy,
        default=ConcurrencyPolicy.ALLOW,
        help="the schedules' concurrency_policy (forbid and replace also hold a schedule claim)",
    )
    arguments = parser.parse_args()
    asyncio.run(
        bench(
            arguments.repeat,
            arguments.schedules,
            arguments.scrape_seconds,
            arguments.concurrency,
            arguments.ack_wait,
            arguments.policy,
        )
    )


if __name__ == "__main__":
    main()
