"""End to end, as deployed: ticker -> runners (noop) -> recorder -> MongoDB, one process each.

For each offered rate R (jobs/s) on a fresh stack (embedded nats-server and SecantusDB,
`natscron provision`, then one recorder, `--runners` runners and one ticker, each its own
`python -m natscron.cli.main <service>` process): put R schedules firing every second,
wait until the recorder has mirrored them, start the ticker, wait `--warm-up` seconds,
measure a `--seconds` window, then drain at most `--drain` seconds. Reported per rate:

- fired/s and merged/s (ticker metrics) and the ticker's fire lag (slot -> published);
- by slot (the issue's figures): completed/s = slots of the window whose `completed`
  document exists after the drain, / window; p50/p99 of slot -> `completed` document,
  and per stage (see bench/measure.py);
- by write: completed documents written during the window, whatever their slot, and
  their stages: the throughput, and how far behind it is when no slot of the window
  gets done;
- a growing backlog: JetStream consumer backlogs at the window's start and end, and the
  lateness at the window's first and last 10 s;
- MongoDB commands per job (`top` on our collections: writes, reads; all requests);
- documents the recorders wrote per completed job, by collection and kind of write (their
  `natscron_recorder_documents_written_total`), and SecantusDB's CPU seconds per 1,000
  completed jobs;
- CPU per process (cores: CPU seconds per second of the window), the machine's, and
  that of other processes sharing the machine (named when it matters);
- ERROR/Traceback and WARNING lines in each process's log.

Run: `.venv/bin/python bench/e2e.py --rates 250,500 --seconds 20` (quick), or with no
options the issue's run (250..4,000 jobs/s, 60 s each). `--ref HEAD` runs the services
from a commit (extracted with `git archive`) instead of the working tree. Figures are
only worth something on an otherwise idle machine: check "other processes".
"""

import argparse
import asyncio
import json
import math
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import ConsumerInfo

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python bench/e2e.py` puts bench/, not the repo, on the path
    sys.path.insert(0, str(REPO))

from bench.load import offer, wait_mirrored  # noqa: E402
from bench.measure import (  # noqa: E402
    RUNNER_NORMAL,
    RateResult,
    Window,
    read_jobs,
    recorder_event_consumers,
    summarise,
    take_snapshot,
)
from bench.processes import Stack, export_source, scan_log  # noqa: E402
from bench.report import (  # noqa: E402
    background_load,
    describe_source,
    machine,
    print_rate,
    print_table,
    server_versions,
    write_json,
)
from natscron_shared.runtime.mongo import database_of, new_client  # noqa: E402

DEFAULT_RATES = "250,500,1000,2000,4000"
FIRE_MARGIN_SECONDS = 2.0
"""After the window, how long the ticker gets to publish its last slots before the drain."""
EDGE_SECONDS = 10.0


@dataclass(frozen=True)
class Options:
    rates: list[int]
    seconds: float
    warm_up: float
    drain: float
    runners: int
    recorders: int
    concurrency: int
    ref: str | None
    json_path: Path | None
    keep_logs: Path | None
    log_level: str
    mirror_timeout: float


async def sleep_until(moment: float) -> None:
    await asyncio.sleep(max(0.0, moment - time.time()))


def acked_up_to(info: ConsumerInfo, sequence: int) -> bool:
    """Whether `info`'s consumer acked every message of its stream up to `sequence` it
    reads: its ack floor is there, or (filtered, with nothing newer for it) it has nothing
    left to ack."""
    if info.ack_floor is not None and info.ack_floor.stream_seq >= sequence:
        return True
    return not info.num_pending and not info.num_ack_pending


async def wait_acked(
    js: JetStreamContext, stream: str, consumer: str, sequence: int, deadline: float
) -> bool:
    """Until every message of `stream` up to `sequence` is acked by `consumer`."""
    while time.time() < deadline:
        if acked_up_to(await js.consumer_info(stream, consumer), sequence):
            return True
        await asyncio.sleep(0.5)
    return False


async def wait_recorded(js: JetStreamContext, sequence: int, deadline: float) -> bool:
    """Until the recorders' EVENTS consumers acked every message up to `sequence`."""
    while time.time() < deadline:
        infos = await recorder_event_consumers(js)
        if all(acked_up_to(info, sequence) for info in infos):
            return True
        await asyncio.sleep(0.5)
    return False


async def drain(js: JetStreamContext, window_end: float, seconds: float) -> bool:
    """Wait (until `window_end + seconds` at most) for the window's jobs to be run, then
    for every event published by then to be written: True if both happened."""
    deadline = window_end + seconds
    await sleep_until(window_end + FIRE_MARGIN_SECONDS)
    published = (await js.stream_info("JOBS")).state.last_seq
    if not await wait_acked(js, "JOBS", RUNNER_NORMAL, published, deadline):
        return False
    events = (await js.stream_info("EVENTS")).state.last_seq
    return await wait_recorded(js, events, deadline)


async def run_rate(rate: int, options: Options, source: Path | None) -> RateResult:
    print(f"\n== {rate} jobs/s ==", flush=True)
    with tempfile.TemporaryDirectory(prefix=f"natscron-bench-{rate}-") as tmp:
        stack = Stack(
            Path(tmp),
            source,
            {
                "NATSCRON_RUNNER_CONCURRENCY": str(options.concurrency),
                "NATSCRON_LOG_LEVEL": options.log_level,
            },
        )
        nc = Client()
        mongo_client = None
        notes: list[str] = []
        try:
            await stack.start_servers()
            assert stack.nats is not None and stack.mongo is not None
            await stack.run_command("provision")
            mongo_client = new_client(stack.mongo.url)
            database = database_of(mongo_client).name
            await nc.connect(stack.nats.url)
            js = nc.jetstream()
            for index in range(1, options.recorders + 1):
                await stack.start_service(
                    "recorder" if index == 1 else f"recorder-{index}", "recorder"
                )
            for index in range(1, options.runners + 1):
                await stack.start_service(
                    f"runner-{index}", "runner", {"NATSCRON_RUNNER_ID": f"runner-{index}"}
                )
            put_started = time.monotonic()
            await offer(js, rate)
            print(f"  {rate} schedules put in {time.monotonic() - put_started:.1f} s", flush=True)
            mirrored = await wait_mirrored(database_of(mongo_client), rate, options.mirror_timeout)
            if mirrored is None:
                notes.append(f"the recorder had not mirrored {rate} specs after the timeout")
            print(f"  specs mirrored to MongoDB in {mirrored or math.inf:.1f} s", flush=True)
            await stack.start_service("ticker", "ticker", {"NATSCRON_TICKER_ID": "ticker-1"})

            start = math.ceil(time.time() + options.warm_up)
            end = start + options.seconds
            await sleep_until(start)
            before = await take_snapshot(stack, js, mongo_client, database)
            opened = datetime.fromtimestamp(start, UTC)
            print(f"  window {options.seconds:.0f} s from {opened:%H:%M:%S} UTC", flush=True)
            await sleep_until(end)
            after = await take_snapshot(stack, js, mongo_client, database)
            drained = await drain(js, end, options.drain)
            drain_seconds = time.time() - end
            print(
                f"  drain {'done' if drained else 'cut off'} after {drain_seconds:.1f} s",
                flush=True,
            )
            died = {s.name: s.process.returncode for s in stack.services if not s.is_running()}
            if died:
                notes.append(f"exited during the run: {died}")
            pids = stack.pids()
            exit_codes = await stack.stop_services()
            jobs = await read_jobs(mongo_client, database)
        finally:
            if nc.is_connected:
                await nc.close()
            if mongo_client is not None:
                await mongo_client.close()
            await stack.stop()
            problems = {path.stem: scan_log(path) for path in sorted(stack.logs.glob("*.log"))}
            if options.keep_logs is not None and stack.logs.exists():
                shutil.copytree(stack.logs, options.keep_logs / f"rate-{rate}", dirs_exist_ok=True)

    return summarise(
        Window(rate, start, options.seconds, min(EDGE_SECONDS, options.seconds / 2)),
        before,
        after,
        jobs,
        stack_pids=pids,
        drain_seconds=drain_seconds,
        drained=drained,
        exit_codes=exit_codes,
        log_problems=problems,
        notes=notes,
    )


# ---------------------------------------------------------------- main


async def bench(options: Options) -> list[RateResult]:
    results: list[RateResult] = []
    with tempfile.TemporaryDirectory(prefix="natscron-bench-src-") as tmp:
        source, commit = None, None
        if options.ref is not None:
            source = Path(tmp)
            commit = export_source(REPO, options.ref, source)
        meta: dict[str, Any] = {
            "date": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "machine": machine(),
            "servers": server_versions(),
            "code": describe_source(REPO, source, commit),
            "options": {k: str(v) for k, v in vars(options).items()},
            "background_load": await background_load(),
        }
        print(json.dumps(meta, indent=2))
        for rate in options.rates:
            result = await run_rate(rate, options, source)
            print_rate(result)
            results.append(result)
            if options.json_path is not None:
                write_json(options.json_path, meta, results)
    print_table(results)
    return results


def _rates(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def parse_options(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rates", type=_rates, default=_rates(DEFAULT_RATES), help="jobs/s")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured window per rate")
    parser.add_argument("--warm-up", type=float, default=10.0, help="seconds before the window")
    parser.add_argument("--drain", type=float, default=30.0, help="max seconds after it")
    parser.add_argument("--runners", type=int, default=2)
    parser.add_argument("--recorders", type=int, default=1, help="recorder processes")
    parser.add_argument("--concurrency", type=int, default=64, help="jobs per runner")
    parser.add_argument("--ref", help="run the services from this git commit (git archive)")
    parser.add_argument("--json", dest="json_path", type=Path, help="write results here")
    parser.add_argument("--keep-logs", type=Path, help="copy every process's log here")
    parser.add_argument("--log-level", default="INFO", help="NATSCRON_LOG_LEVEL of the services")
    parser.add_argument(
        "--mirror-timeout", type=float, default=300.0, help="max wait for the specs in MongoDB"
    )
    args = parser.parse_args(argv)
    return Options(**vars(args))


def main() -> None:
    options = parse_options()

    async def run() -> None:
        task = asyncio.current_task()
        assert task is not None
        # SIGTERM like Ctrl-C: cancel, so every `finally` stops what it started.
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        await bench(options)

    try:
        asyncio.run(run())
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("\ninterrupted; every process started was stopped", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
