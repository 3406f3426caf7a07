"""The recorder alone: how fast it writes a pre-filled EVENTS stream, nothing else running.

On a fresh embedded stack (nats-server, SecantusDB, `natscron provision`): put R schedules
firing every second into KV and let `--recorders` recorder processes mirror them; stop the
recorders; publish what the ticker and the runners would have for S seconds of R jobs/s
(per job `pending`, `running`, `completed` and the schedule's next-run event, in the order
and with the moments they would have: second by second); start the recorders again and
measure until every recorder consumer of EVENTS has acked everything. Reported per run:

- jobs/s over the whole catch-up (from the recorders' start) and between 10% and 90% of the
  messages acked (the steady rate, without start-up and the last flush);
- the documents the recorders wrote per job, by collection and kind of write;
- CPU (cores) of the recorders, SecantusDB and nats-server over the catch-up, and
  SecantusDB's and the recorders' CPU seconds per 1,000 jobs;
- that every job is in MongoDB, completed, and each schedule's `run_count` is exact.

Run: `.venv/bin/python bench/recorder_alone.py --rate 2000 --seconds 30 --repeat 2`
(`--recorders 2` for two).
"""

import argparse
import asyncio
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from nats.aio.client import Client
from nats.js import JetStreamContext
from pymongo import AsyncMongoClient

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python bench/recorder_alone.py` puts bench/ on the path
    sys.path.insert(0, str(REPO))

from bench.load import bench_schedules, offer, wait_mirrored  # noqa: E402
from bench.measure import recorder_event_consumers  # noqa: E402
from bench.processes import CpuTimes, Stack, scan_log  # noqa: E402
from bench.report import background_load, machine  # noqa: E402
from natscron_shared.contract import names  # noqa: E402
from natscron_shared.contract.enums import JobStatus, Priority, Trigger  # noqa: E402
from natscron_shared.contract.job_ids import scheduled_job_run_id  # noqa: E402
from natscron_shared.contract.messages import JobEvent, RunRequest, ScheduleEvent  # noqa: E402
from natscron_shared.contract.storage import Document  # noqa: E402
from natscron_shared.nats.connection import to_json  # noqa: E402
from natscron_shared.runtime.mongo import database_of, new_client  # noqa: E402

T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
RUNNING_AFTER = timedelta(milliseconds=5)
COMPLETED_AFTER = timedelta(milliseconds=15)
IN_FLIGHT = 5_000
WRITTEN = "natscron_recorder_documents_written_total"


@dataclass(frozen=True)
class Options:
    rate: int
    seconds: int
    recorders: int
    repeat: int
    json_path: Path | None


def second_of_events(rate: int, second: int) -> list[tuple[str, bytes, str | None]]:
    """What the ticker and the runners publish for one second of `rate` jobs, in order."""
    slot = T0 + timedelta(seconds=second)
    Message = tuple[str, bytes, str | None]
    pending: list[Message] = []
    schedule: list[Message] = []
    running: list[Message] = []
    completed: list[Message] = []
    for spec in bench_schedules(rate):
        job_id = scheduled_job_run_id(spec.scheduled_job_id, slot)
        job = RunRequest(
            job_id=job_id,
            scheduled_job_id=spec.scheduled_job_id,
            trigger=Trigger.SCHEDULED,
            priority=Priority.NORMAL,
            scheduled_for=slot,
            created_at=slot,
            scraper="noop",
        )
        started, done = slot + RUNNING_AFTER, slot + COMPLETED_AFTER
        events = (
            (pending, JobEvent(job=job, status=JobStatus.PENDING, at=slot)),
            (
                running,
                JobEvent(
                    job=job, status=JobStatus.RUNNING, at=started, runner_id="r", started_at=started
                ),
            ),
            (
                completed,
                JobEvent(
                    job=job,
                    status=JobStatus.COMPLETED,
                    at=done,
                    runner_id="r",
                    started_at=started,
                    completed_at=done,
                    duration_ms=10,
                ),
            ),
        )
        for into, event in events:
            into.append((names.job_event_subject(job_id), to_json(event), event.msg_id))
        next_run = ScheduleEvent(
            scheduled_job_id=spec.scheduled_job_id, next_run_at=slot + timedelta(seconds=1), at=slot
        )
        schedule.append(
            (names.scheduled_job_event_subject(spec.scheduled_job_id), to_json(next_run), None)
        )
    return pending + schedule + running + completed


async def prefill(js: JetStreamContext, rate: int, seconds: int) -> int:
    """Publish `seconds` of `rate` jobs' events; the number of messages stored."""
    sent = 0
    for second in range(seconds):
        pending: list[asyncio.Future[Any]] = []
        for subject, payload, msg_id in second_of_events(rate, second):
            headers = {"Nats-Msg-Id": msg_id} if msg_id else None
            pending.append(await js.publish_async(subject, payload, headers=headers))
            if len(pending) >= IN_FLIGHT:
                await asyncio.gather(*pending)
                sent, pending = sent + len(pending), []
        await asyncio.gather(*pending)
        sent += len(pending)
    return sent


TOP_SECTIONS = ("insert", "update", "queries", "getmore", "remove", "commands")


async def top_times(mongo: AsyncMongoClient[Document], database: str) -> dict[str, list[float]]:
    """MongoDB's `top`: for each of our collections and kind of operation, [count, ms]."""
    top = await mongo.admin.command("top")
    found: dict[str, list[float]] = {}
    for namespace, sections in top.get("totals", {}).items():
        if not namespace.startswith(f"{database}.") or not isinstance(sections, dict):
            continue
        for section in TOP_SECTIONS:
            if section in sections and sections[section]["count"]:
                name = f"{namespace.removeprefix(database + '.')}/{section}"
                found[name] = [sections[section]["count"], sections[section]["time"] / 1000]
    return found


def top_delta(before: dict[str, list[float]], after: dict[str, list[float]], jobs: int) -> Any:
    """Per 1,000 jobs: operations and server milliseconds, by collection and kind."""
    delta = {}
    for key, (count, ms) in after.items():
        count0, ms0 = before.get(key, [0.0, 0.0])
        if count > count0:
            delta[key] = {
                "ops_per_1000_jobs": round((count - count0) / jobs * 1000, 1),
                "ms_per_1000_jobs": round((ms - ms0) / jobs * 1000, 1),
            }
    return delta


async def remaining(js: JetStreamContext) -> int:
    infos = await recorder_event_consumers(js)
    return sum((i.num_pending or 0) + (i.num_ack_pending or 0) for i in infos)


async def written(stack: Stack) -> dict[str, float]:
    totals: dict[str, float] = {}
    for service in stack.services:
        scrape = await service.scrape()
        if scrape is None:
            continue
        for key, value in scrape.counters.items():
            if key.startswith(WRITTEN + "{"):
                totals[key] = totals.get(key, 0.0) + value
    return totals


def written_text(key: str) -> str:
    labels = dict(part.split("=") for part in key[len(WRITTEN) + 1 : -1].split(","))
    return f"{labels['collection'].strip(chr(34))}/{labels['kind'].strip(chr(34))}"


async def one_run(options: Options, run: int) -> dict[str, Any]:
    rate, seconds = options.rate, options.seconds
    jobs = rate * seconds
    with tempfile.TemporaryDirectory(prefix="natscron-recorder-alone-") as tmp:
        stack = Stack(Path(tmp), None, {"NATSCRON_LOG_LEVEL": "INFO"})
        nc = Client()
        mongo = None
        try:
            await stack.start_servers()
            assert stack.nats is not None and stack.mongo is not None
            await stack.run_command("provision")
            await nc.connect(stack.nats.url)
            js = nc.jetstream(publish_async_max_pending=IN_FLIGHT)
            mongo = new_client(stack.mongo.url)
            db = database_of(mongo)
            names_ = [f"recorder-{n}" for n in range(1, options.recorders + 1)]
            for name in names_:
                await stack.start_service(name, "recorder")
            await offer(js, rate)
            await wait_mirrored(db, rate, 300.0)
            for service in stack.services:
                await service.stop()
            stack.services.clear()

            filled = time.monotonic()
            messages = await prefill(js, rate, seconds)
            print(
                f"  run {run}: {messages} messages ({jobs} jobs) published in"
                f" {time.monotonic() - filled:.1f} s",
                flush=True,
            )

            top_before = await top_times(mongo, db.name)
            before = CpuTimes.read()
            started = time.monotonic()
            for name in names_:
                await stack.start_service(name, "recorder")
            marks: dict[float, float] = {}
            while (left := await remaining(js)) > 0 or not marks:
                done = 1 - left / messages
                for mark in (0.1, 0.9):
                    if done >= mark and mark not in marks:
                        marks[mark] = time.monotonic()
                if left == 0:
                    break
                await asyncio.sleep(0.25)
            finished = time.monotonic()
            after = CpuTimes.read()
            top_after = await top_times(mongo, db.name)
            documents = await written(stack)
            pids = stack.pids()
            cpu = {
                name: after.of(after.tree(pid)) - before.of(before.tree(pid))
                for name, pid in pids.items()
            }
            await stack.stop_services()
            recorded = await db.jobs.count_documents({"status": JobStatus.COMPLETED.value})
            counts = await db.scheduled_jobs.distinct("run_count")
        finally:
            if nc.is_connected:
                await nc.close()
            if mongo is not None:
                await mongo.close()
            await stack.stop()
            problems = {p.stem: scan_log(p) for p in sorted(stack.logs.glob("*.log"))}

    wall = finished - started
    steady = marks.get(0.9, finished) - marks.get(0.1, started)
    recorder_cpu = sum(v for k, v in cpu.items() if k.startswith("recorder"))
    result = {
        "run": run,
        "jobs": jobs,
        "messages": messages,
        "seconds": round(wall, 2),
        "jobs_per_s": round(jobs / wall, 1),
        "steady_jobs_per_s": round(0.8 * jobs / steady, 1) if steady > 0 else None,
        "cores": {k: round(v / wall, 2) for k, v in cpu.items()},
        "recorder_cpu_s_per_1000_jobs": round(recorder_cpu / jobs * 1000, 3),
        "secantusdb_cpu_s_per_1000_jobs": round(cpu["secantusdb"] / jobs * 1000, 3),
        "documents_per_job": {written_text(k): round(v / jobs, 3) for k, v in documents.items()},
        "documents_per_job_total": round(sum(documents.values()) / jobs, 3),
        "mongo_top": top_delta(top_before, top_after, jobs),
        "recorded_completed": recorded,
        "run_counts": sorted(counts),
        "log_errors": {k: v.errors for k, v in problems.items() if v.errors},
    }
    print(f"  run {run}: {json.dumps(result)}", flush=True)
    return result


async def bench(options: Options) -> list[dict[str, Any]]:
    print(
        json.dumps(
            {
                "date": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
                "command": " ".join([Path(sys.executable).name, *sys.argv]),
                "machine": machine(),
                "background_load": await background_load(),
            },
            indent=2,
        ),
        flush=True,
    )
    results = [await one_run(options, run) for run in range(1, options.repeat + 1)]
    if options.json_path is not None:
        options.json_path.write_text(json.dumps(results, indent=2))
    print(
        f"\n{options.recorders} recorder(s), {options.rate} jobs/s x {options.seconds} s pre-filled"
    )
    print(" run   jobs/s  steady/s  docs/job  rec cpu s/1k  db cpu s/1k  cores rec+db+nats")
    for r in results:
        cores = r["cores"]
        rec = sum(v for k, v in cores.items() if k.startswith("recorder"))
        print(
            f"{r['run']:>4} {r['jobs_per_s']:>8} {r['steady_jobs_per_s']!s:>9}"
            f" {r['documents_per_job_total']:>9} {r['recorder_cpu_s_per_1000_jobs']:>13}"
            f" {r['secantusdb_cpu_s_per_1000_jobs']:>12}"
            f"  {rec:.2f}+{cores['secantusdb']:.2f}+{cores['nats-server']:.2f}"
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=int, default=2000, help="jobs per second pre-filled")
    parser.add_argument("--seconds", type=int, default=30, help="seconds of jobs pre-filled")
    parser.add_argument("--recorders", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--json", dest="json_path", type=Path)
    args = parser.parse_args()
    asyncio.run(
        bench(Options(args.rate, args.seconds, args.recorders, args.repeat, args.json_path))
    )


if __name__ == "__main__":
    main()
