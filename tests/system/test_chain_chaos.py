"""Chains across a ticker SIGKILL and a recorder restart, with real processes: a parent fires
every second, a child runs after each of its runs, a grandchild after each of the child's.
The leading ticker is killed while runs finish (its standby takes over the durable CHAINS
consumer; a finish it held comes back after the ack wait), then the recorder. Once all is
settled, every parent run has exactly one child run, and every child run exactly one
grandchild run, each naming its parent's run in `chained_from`, and one `chain_fired`
decision document naming both."""

import asyncio
import time
from collections import Counter
from pathlib import Path

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from pymongo.asynchronous.database import AsyncDatabase

from natscron.embedded import free_port
from natscron_shared.contract import names
from natscron_shared.contract.enums import JobStatus, Priority, ScheduledJobStatus
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.contract.pools import DEFAULT_POOL
from natscron_shared.contract.storage import Document
from natscron_shared.nats.jetstream_layout import CHAINS_ACK_WAIT_SECONDS
from natscron_shared.nats.schedule_bucket import put_schedules
from natscron_shared.runtime.mongo import database_of, new_client
from tests.processes import Fleet, RestartableMongo, ServiceProcess
from tests.servers import Server
from tests.waiting import eventually

pytestmark = pytest.mark.integration

DATABASE = "chains"
SETTLE_WITHIN = CHAINS_ACK_WAIT_SECONDS + 60.0
CONSUMERS = (
    (names.STREAM_JOBS, names.runner_consumer(DEFAULT_POOL, Priority.IMMEDIATE)),
    (names.STREAM_JOBS, names.runner_consumer(DEFAULT_POOL, Priority.NORMAL)),
    (names.STREAM_CHAINS, names.CHAINS_CONSUMER),
    (names.STREAM_EVENTS, names.RECORDER_EVENTS_CONSUMER),
    (names.STREAM_DECISIONS, names.RECORDER_DECISIONS_CONSUMER),
)
UNFINISHED = [JobStatus.PENDING.value, JobStatus.RUNNING.value]


def spec(scheduled_job_id: str, parent: str | None = None, paused: bool = False) -> ScheduledJob:
    return ScheduledJob.model_validate(
        {
            "scheduled_job_id": scheduled_job_id,
            "name": scheduled_job_id,
            "status": ScheduledJobStatus.PAUSED if paused else ScheduledJobStatus.ACTIVE,
            "scraper": "noop",
            "params": {"delay_seconds": 0.1},
        }
        | (
            {"after": [{"scheduled_job_id": parent, "on": "completion"}]}
            if parent
            else {"cron_expression": "* * * * * *"}
        )
    )


async def leader_of(tickers: list[ServiceProcess]) -> ServiceProcess | None:
    for ticker in tickers:
        alive = ticker.process is not None and ticker.process.returncode is None
        if alive and await ticker.metric("natscron_ticker_leader") == 1:
            return ticker
    return None


async def settled(js: JetStreamContext, db: AsyncDatabase[Document]) -> list[str]:
    """What is still to do: consumers with messages pending or unacked, unfinished jobs."""
    left = []
    for stream, durable in CONSUMERS:
        info = await js.consumer_info(stream, durable)
        if info.num_pending or info.num_ack_pending:
            left.append(f"{durable}: {info.num_pending} pending, {info.num_ack_pending} unacked")
    unfinished = await db["jobs"].count_documents({"status": {"$in": UNFINISHED}})
    if unfinished:
        left.append(f"{unfinished} jobs unfinished")
    return left


async def runs_of(db: AsyncDatabase[Document], scheduled_job_id: str) -> list[Document]:
    return [doc async for doc in db["jobs"].find({"scheduled_job_id": scheduled_job_id})]


def chain_problems(parents: list[Document], children: list[Document], child: str) -> list[str]:
    parent_ids = {doc["job_id"] for doc in parents}
    chained = Counter(p for doc in children for p in doc.get("chained_from") or [])
    problems = [f"{child}: no run after {p}" for p in sorted(parent_ids - set(chained))]
    problems += [f"{child}: {n} runs after {p}" for p, n in sorted(chained.items()) if n > 1]
    problems += [f"{child}: a run after unknown {p}" for p in sorted(set(chained) - parent_ids)]
    problems += [
        f"{child}: {doc['job_id']} is {doc['trigger']}, chained from {doc.get('chained_from')}"
        for doc in children
        if doc["trigger"] != "chain" or len(doc.get("chained_from") or []) != 1
    ]
    return problems


async def decision_problems(
    db: AsyncDatabase[Document], children: list[Document], child: str
) -> list[str]:
    """Each chained run of `child` has one `chain_fired` document, naming it and its parent
    run, and there is no other."""
    query = {"scheduled_job_id": child, "kind": "chain_fired"}
    records = await db["decisions"].find(query).to_list()
    fired = Counter((doc.get("job_id"), doc.get("cause_job_id")) for doc in records)
    runs = Counter((doc["job_id"], (doc.get("chained_from") or [None])[0]) for doc in children)
    problems = [f"{child}: no chain_fired record of {run}" for run in sorted(runs - fired)]
    return problems + [f"{child}: chain_fired {d} x{n}" for d, n in (fired - runs).items()]


async def test_every_parent_run_has_exactly_one_child_run_across_kills(
    nats_server: Server, nc: Client, tmp_path: Path
) -> None:
    mongo = RestartableMongo(tmp_path / "mongo-server", port=free_port())
    fleet = Fleet(
        log_dir=tmp_path,
        base_env={
            "NATSCRON_NATS_URL": nats_server.url,
            "NATSCRON_MONGO_URL": mongo.url(DATABASE),
            "NATSCRON_DATA_DIR": str(tmp_path / "data"),
            "NATSCRON_SHUTDOWN_GRACE_SECONDS": "5",
            "NATSCRON_RUNNER_CONCURRENCY": "8",
        },
        mongo=mongo,
    )
    recorder = fleet.service("recorder", "recorder")
    runner = fleet.service("runner", "runner")
    tickers = [fleet.service(f"ticker-{n}", "ticker", NATSCRON_TICKER_ID=f"t{n}") for n in (1, 2)]
    js = nc.jetstream()
    client = new_client(mongo.url(DATABASE))
    db = database_of(client)
    log: list[str] = []
    started = time.monotonic()

    def note(what: str) -> None:
        log.append(f"{time.monotonic() - started:7.3f}s {what}")

    try:
        await mongo.start()
        for service in (recorder, runner, *tickers):
            await service.start()
        for service in (recorder, runner, *tickers):
            await service.wait_ready()
        # Children first: a parent run fired before its child is known announces no end.
        await put_schedules(js, [spec("report", "load"), spec("load", "extract"), spec("extract")])
        note("extract every second, load after it, report after load")

        async def reports() -> int:
            return await db["jobs"].count_documents({"scheduled_job_id": "report"})

        await eventually(reports, lambda n: n >= 3, within=60, what="the first chained runs")
        leader = await eventually(lambda: leader_of(tickers), what="a leader")
        assert leader is not None
        await leader.kill()
        note(f"SIGKILL {leader.name}, the leader")
        standby = next(t for t in tickers if t is not leader)
        await eventually(lambda: leader_of([standby]), what=f"{standby.name} leads", within=30)
        note(f"{standby.name} leads")
        await asyncio.sleep(2)  # the load under test: parents finishing after the failover
        await recorder.kill()
        note("SIGKILL the recorder")
        await asyncio.sleep(2)  # runs finish while nothing records them
        await recorder.start()
        await recorder.wait_ready()
        note("recorder back")
        await leader.start()
        await eventually(reports, lambda n: n >= 10, within=60, what="more chained runs")

        await put_schedules(js, [spec("extract", paused=True)])
        note("extract paused")
        await eventually(
            lambda: settled(js, db), lambda left: not left, within=SETTLE_WITHIN, what="settled"
        )
        note("settled")
        extract, load, report = [await runs_of(db, i) for i in ("extract", "load", "report")]
        chains = await js.consumer_info(names.STREAM_CHAINS, names.CHAINS_CONSUMER)
        note(
            f"{len(extract)} extract runs, {len(load)} load runs, {len(report)} report runs;"
            f" {chains.num_redelivered} chain finishes delivered again"
        )
        problems = chain_problems(extract, load, "load") + chain_problems(load, report, "report")
        assert not problems, "\n".join(problems)
        problems = await decision_problems(db, load, "load")
        problems += await decision_problems(db, report, "report")
        assert not problems, "\n".join(problems)
        assert all(doc["status"] == JobStatus.COMPLETED.value for doc in extract + load + report)
        assert len(extract) >= 10
    except BaseException:
        print(fleet.log_tails())
        raise
    finally:
        print("\n".join(log))
        await client.close()
        await fleet.kill_all()
        assert fleet.survivors() == []
