"""Fire lateness: the ticker against nats-server's own message schedules (ADR-51).

Lateness = JetStream's stored time of a fired message minus the slot it fires: when the
server stored it, not when anyone read it. Both systems run on this machine in the same
run, one after the other, each on a fresh nats-server (`natscron.embedded.start_nats`).
Nothing reads during a window: the messages are read back by sequence (`js.get_msg`, no
consumer) after it, once the ticker is stopped or the definitions are purged.

natscron, per run: a fresh stack (`bench.processes.Stack`: nats-server and SecantusDB),
`natscron provision`, N specs put in KV `scheduled_jobs` (scraper `noop`, UTC, default
`catchup: latest`), then one `natscron ticker` process. No runner: the run requests stay
in the work-queue stream JOBS, each body giving its slot (`scheduled_for`) and schedule.
With `--publishers bulk publish_async`, each repeat runs the ticker twice, as it is
("natscron") and publishing through nats-py's public `js.publish_async` instead of its
`BulkPublisher` ("pub_async", `bench/publish_async_ticker.py`).

The server, per run: nats-server alone, one file stream with `allow_msg_schedules`
(subjects `sched.def.>` and `sched.fired`), N definitions published on `sched.def.<i>`
with `Nats-Schedule` (the same 6-field cron, seconds first), `Nats-Schedule-Time-Zone:
UTC` and `Nats-Schedule-Target: sched.fired`, each with a body the size of a natscron run
request. A produced message names its definition (`Nats-Scheduler`) and the definition's
next fire time (`Nats-Schedule-Next`), not its own slot. Its slot is the
`Nats-Schedule-Next` of the same definition's previous produced message: the server fires
a definition when that time is due, so this is exact even when the server is late. With no
previous message read, the slot is `Nats-Schedule-Next` minus the cron's period (1 s; a
day for the burst's daily cron), which holds unless the message was a period late (the
server then skips ahead). Reading starts 2 s before a window, so every slot in it has its
predecessor read.

Cases, each run `--repeat` times, both systems per repeat (so a ratio per repeat):

- rate R (`--rates`, default 500 and 2,000): R schedules of `* * * * * *`. After the
  ticker leads (the server: once the last definition is stored) and `--warmup` seconds,
  the slots of a `--seconds` window of whole seconds are measured, R per second expected;
  "missing" are (schedule, slot) pairs of the window never stored. A ticker that falls
  behind merges slots (`catchup: latest`), the server skips ahead to the next second:
  both show as missing, so keeping up is `missing == 0`.
- burst B (`--burst`, default 100,000; 0 to skip): B schedules due once, at the same
  second: a daily 6-field cron (`s m h * * *`) at the first whole second `--burst-lead`
  seconds after loading began (default 90: the puts, the ticker's start and lead, and
  20 s or more to spare; a note says how far ahead of the slot the ticker led). "max" is
  the slot to the last of the B stored; they are awaited for `--burst-timeout` seconds.

"load s" is the time to put the specs (natscron) or store the definitions (server),
pipelined 1,000 at a time. The ratio is natscron's p99 over the server's. Targets from the
issue: 2,000/s p99 < 20 ms and keeping up (the server: 17-25 ms); 500/s p99 < 6 ms;
100,000 due at one second all stored within 1.5 s.

Run: `.venv/bin/python bench/lateness.py --rates 500 2000 --burst 100000 --seconds 20
--repeat 2` (the defaults; about 15 minutes on 2 cores; add `--publishers bulk
publish_async` for the public API's figures in the same run, about 22 minutes).
"""

import argparse
import asyncio
import json
import math
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import KeyNotFoundError, NotFoundError

from bench.processes import provisioned_stack, scan_log, summed
from bench.publish_async_publisher import STARTED
from natscron.embedded import start_nats
from natscron_shared.contract import names
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.nats.connection import to_json

EVERY_SECOND = "* * * * * *"
CHUNK = 1_000
"""Puts, publishes and reads awaited at once."""
SETTLE_SECONDS = 3.0
"""After the window's last slot, how long stored messages are awaited."""
LEAD_TIMEOUT_SECONDS = 180.0
SCHEDULE_STREAM = "SCHED"
DEFINITION_PREFIX = "sched.def."
TARGET_SUBJECT = "sched.fired"
PUBLISHERS = {
    "bulk": ("natscron", None),
    "publish_async": ("pub_async", "bench.publish_async_ticker"),
}
"""`--publishers`: the ticker's publisher, as (system shown, the ticker's variant module)."""
RUN_REQUEST_LIKE_BODY = json.dumps(
    {
        "job_id": "scheduled_bench-00000_1700000000_abcdef",
        "scheduled_job_id": "bench-00000",
        "trigger": "scheduled",
        "priority": "normal",
        "scheduled_for": "2026-11-25T12:00:00Z",
        "created_at": "2026-11-25T12:00:00.000123Z",
        "scraper": "noop",
        "params": {},
        "max_retries": 0,
        "retry_backoff_seconds": 30.0,
        "timeout_seconds": 3600.0,
        "concurrency_policy": "allow",
    }
).encode()
"""The server's definitions carry a body the size of a natscron run request."""
T = TypeVar("T")


@dataclass
class Result:
    """One system's figures for one case in one repeat."""

    system: str
    expected: int
    fired: int
    lateness_ms: list[float]
    """Stored time minus slot of every fired slot measured, sorted."""
    setup_s: float
    """Seconds to load the schedules (puts, or definitions stored)."""
    notes: list[str] = field(default_factory=list)

    @classmethod
    def of(
        cls,
        system: str,
        case: "Case",
        in_window: list[tuple[str, datetime, datetime]],
        setup_s: float,
        notes: list[str],
    ) -> "Result":
        """From the (schedule, slot, stored at) triples measured in the window."""
        return cls(
            system=system,
            expected=case.expected,
            fired=len({(job, slot) for job, slot, _ in in_window}),
            lateness_ms=sorted(lateness_ms(at, slot) for _, slot, at in in_window),
            setup_s=setup_s,
            notes=notes,
        )

    @property
    def missing(self) -> int:
        return self.expected - self.fired

    def quantile(self, q: float) -> float:
        """Nearest rank; NaN without samples."""
        if not self.lateness_ms:
            return math.nan
        rank = max(1, math.ceil(q * len(self.lateness_ms)))
        return self.lateness_ms[rank - 1]

    @property
    def p50(self) -> float:
        return self.quantile(0.50)

    @property
    def p99(self) -> float:
        return self.quantile(0.99)

    @property
    def max(self) -> float:
        return self.lateness_ms[-1] if self.lateness_ms else math.nan


@dataclass(frozen=True)
class Case:
    kind: str
    """"rate" or "burst"."""
    count: int
    seconds: int
    warmup: float
    lead: float
    timeout: float

    @property
    def title(self) -> str:
        if self.kind == "rate":
            return (
                f"{self.count:,} schedules every second ({self.count:,}/s),"
                f" {self.seconds} s window after {self.warmup:g} s warm-up:"
                f" {self.count * self.seconds:,} slots"
            )
        return (
            f"burst: {self.count:,} schedules due at the same second"
            f" (daily 6-field cron, slot {self.lead:g} s after loading began)"
        )

    @property
    def expected(self) -> int:
        return self.count * self.seconds if self.kind == "rate" else self.count

    @property
    def period(self) -> timedelta:
        """Between two slots of one schedule."""
        return timedelta(seconds=1) if self.kind == "rate" else timedelta(days=1)

    def plan(self) -> tuple[str, datetime | None]:
        """The cron, and for a burst its one slot: `lead` seconds from now."""
        if self.kind == "rate":
            return EVERY_SECOND, None
        slot = whole_second_after(datetime.now(UTC) + timedelta(seconds=self.lead))
        return f"{slot.second} {slot.minute} {slot.hour} * * *", slot


# Shared helpers


def whole_second_after(moment: datetime) -> datetime:
    return moment.replace(microsecond=0) + timedelta(seconds=1)


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime
    """Slots in [start, end) are measured."""
    first_seq: int
    """The stream's first sequence stored from 2 s before the window on."""

    def holds(self, slot: datetime) -> bool:
        return self.start <= slot < self.end


async def await_window(
    js: JetStreamContext, stream: str, case: Case, ready_at: datetime, slot: datetime | None
) -> Window:
    """Sleep through the case's window (until its slots should be stored); returns it."""
    if slot is None:
        start = whole_second_after(ready_at + timedelta(seconds=case.warmup))
        end = start + timedelta(seconds=case.seconds)
    else:
        start, end = slot, slot + timedelta(seconds=1)
    await sleep_until(start - timedelta(seconds=2))
    first = await last_seq(js, stream) + 1
    if slot is None:
        await sleep_until(end + timedelta(seconds=SETTLE_SECONDS))
    else:
        await sleep_until(start)
        await wait_stored(js, stream, first, case.count, time.monotonic() + case.timeout)
        await asyncio.sleep(SETTLE_SECONDS)
    return Window(start, end, first)


async def sleep_until(moment: datetime) -> None:
    delay = (moment - datetime.now(UTC)).total_seconds()
    if delay > 0:
        await asyncio.sleep(delay)


async def last_seq(js: JetStreamContext, stream: str) -> int:
    info = await js.stream_info(stream)
    seq: int = info.state.last_seq
    return seq


async def read_range(js: JetStreamContext, stream: str, first: int, last: int) -> list[Any]:
    """The stored messages first..last (inclusive), pipelined; gaps skipped."""

    async def one(seq: int) -> Any:
        try:
            return await js.get_msg(stream, seq)
        except NotFoundError:
            return None

    messages: list[Any] = []
    for start in range(first, last + 1, CHUNK):
        chunk = range(start, min(start + CHUNK, last + 1))
        found = await asyncio.gather(*(one(seq) for seq in chunk))
        messages.extend(message for message in found if message is not None)
    return messages


async def in_chunks(items: list[T], call: Callable[[T], Awaitable[object]]) -> None:
    """`call` on every item, CHUNK at a time."""
    for start in range(0, len(items), CHUNK):
        await asyncio.gather(*(call(item) for item in items[start : start + CHUNK]))


async def wait_stored(
    js: JetStreamContext, stream: str, first: int, count: int, until: float
) -> None:
    """Until `count` messages are stored from `first` on, or the monotonic `until`."""
    while time.monotonic() < until:
        if await last_seq(js, stream) - first + 1 >= count:
            return
        await asyncio.sleep(0.5)


def lateness_ms(stored: datetime, slot: datetime) -> float:
    return (stored - slot).total_seconds() * 1000


# natscron


def specs(count: int, cron: str) -> list[ScheduledJob]:
    return [
        ScheduledJob(
            scheduled_job_id=f"bench-{index:06d}",
            name=f"bench {index}",
            cron_expression=cron,
            scraper="noop",
        )
        for index in range(count)
    ]


async def leader(js: JetStreamContext) -> bytes | None:
    bucket = await js.key_value(names.KV_TICKER_LEADER)
    try:
        value: bytes | None = (await bucket.get(names.LEADER_KEY)).value
    except KeyNotFoundError:
        return None
    return value


async def wait_leader(js: JetStreamContext, within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await leader(js):
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"no ticker led within {within:.0f} s")


def natscron_slots(messages: list[Any]) -> list[tuple[str, datetime, datetime]]:
    """(schedule, slot, stored at) of each scheduled run request."""
    found = []
    for message in messages:
        request = json.loads(message.data or b"{}")
        if request.get("scheduled_for") and message.time is not None:
            slot = datetime.fromisoformat(request["scheduled_for"])
            found.append((str(request["scheduled_job_id"]), slot, message.time))
    return found


async def run_natscron(case: Case, publisher: str) -> Result:
    system, variant = PUBLISHERS[publisher]
    async with provisioned_stack() as (stack, js):
        bucket = await js.key_value(names.KV_SCHEDULED_JOBS)
        cron, burst_at = case.plan()
        started = time.monotonic()
        await in_chunks(
            specs(case.count, cron),
            lambda spec: bucket.put(spec.scheduled_job_id, to_json(spec)),
        )
        setup_s = time.monotonic() - started
        ticker = await stack.start_service("ticker", "ticker", variant=variant)
        if variant is not None and STARTED not in ticker.log_tail(lines=1_000):
            raise RuntimeError(f"the ticker of {variant} did not say {STARTED!r}")
        await wait_leader(js, within=LEAD_TIMEOUT_SECONDS)
        led_at = datetime.now(UTC)
        notes = []
        if burst_at is not None:
            ahead = (burst_at - led_at).total_seconds()
            notes.append(
                f"ticker started and led in {time.monotonic() - started - setup_s:.1f} s,"
                f" {ahead:.1f} s before the slot"
                + ("" if ahead > 0 else ": TOO LATE, raise --burst-lead")
            )
        window = await await_window(js, names.STREAM_JOBS, case, led_at, burst_at)
        scrape = await ticker.scrape()
        await stack.stop_services()
        last = await last_seq(js, names.STREAM_JOBS)
        slots = natscron_slots(await read_range(js, names.STREAM_JOBS, window.first_seq, last))
        in_window = [(job, slot, at) for job, slot, at in slots if window.holds(slot)]
        if scrape is not None:
            skipped = summed(scrape.counters, "natscron_ticker_slots_skipped_total")
            if skipped:
                notes.append(f"ticker skipped {skipped:.0f} slots (catchup merged)")
        problems = scan_log(ticker.log_path)
        if problems.errors:
            notes.append(f"ticker log: {problems.errors} error lines, e.g. {problems.examples[0]}")
        return Result.of(system, case, in_window, setup_s, notes)


# nats-server's own schedules (ADR-51)


def server_slots(messages: list[Any], period: timedelta) -> list[tuple[str, datetime, datetime]]:
    """(definition, slot, stored at) of each produced message, in stream order; the slot is
    the previous `Nats-Schedule-Next` of the same definition (see the module docstring)."""
    previous_next: dict[str, datetime] = {}
    found = []
    for message in messages:
        headers = message.headers or {}
        scheduler = headers.get("Nats-Scheduler")
        next_text = headers.get("Nats-Schedule-Next")
        if message.subject != TARGET_SUBJECT or not scheduler or message.time is None:
            continue
        following = datetime.fromisoformat(next_text) if next_text else None
        slot = previous_next.get(scheduler)
        if slot is None and following is not None:
            slot = following - period
        if following is not None:
            previous_next[scheduler] = following
        if slot is not None:
            found.append((scheduler, slot, message.time))
    return found


async def run_server(case: Case) -> Result:
    with tempfile.TemporaryDirectory() as tmp:
        server = await start_nats(Path(tmp))
        nc = Client()
        try:
            await nc.connect(server.url)
            js = nc.jetstream()
            await js.add_stream(
                StreamConfig(
                    name=SCHEDULE_STREAM,
                    subjects=[f"{DEFINITION_PREFIX}>", TARGET_SUBJECT],
                    storage=StorageType.FILE,
                    allow_msg_schedules=True,
                )
            )
            cron, burst_at = case.plan()
            headers = {
                "Nats-Schedule": cron,
                "Nats-Schedule-Time-Zone": "UTC",
                "Nats-Schedule-Target": TARGET_SUBJECT,
            }
            started = time.monotonic()
            await in_chunks(
                list(range(case.count)),
                lambda index: js.publish(
                    f"{DEFINITION_PREFIX}{index:06d}", RUN_REQUEST_LIKE_BODY, headers=headers
                ),
            )
            setup_s = time.monotonic() - started
            window = await await_window(js, SCHEDULE_STREAM, case, datetime.now(UTC), burst_at)
            # Stop the schedules, as the natscron run stops its ticker, then read.
            await js.purge_stream(SCHEDULE_STREAM, subject=f"{DEFINITION_PREFIX}>")
            last = await last_seq(js, SCHEDULE_STREAM)
            messages = await read_range(js, SCHEDULE_STREAM, window.first_seq, last)
            slots = server_slots(messages, case.period)
            in_window = [(job, slot, at) for job, slot, at in slots if window.holds(slot)]
            notes = []
            problems = scan_log(Path(tmp) / "logs" / "nats.log")
            if problems.errors:
                notes.append(
                    f"nats log: {problems.errors} error lines, e.g. {problems.examples[0]}"
                )
            return Result.of("server", case, in_window, setup_s, notes)
        finally:
            if nc.is_connected:
                await nc.close()
            await server.stop()


# Report


def figure(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f}"


def row(repeat: int, result: Result) -> str:
    return (
        f"{repeat:>4} {result.system:<9} {result.fired:>9,}/{result.expected:<9,}"
        f" {result.missing:>8,} {figure(result.p50):>8} {figure(result.p99):>8}"
        f" {figure(result.max):>8} {result.setup_s:>8.2f}"
    )


def span(values: list[float], unit: str = "") -> str:
    present = [value for value in values if not math.isnan(value)]
    if not present:
        return "-"
    low, high = min(present), max(present)
    return f"{low:.1f}{unit}" if low == high else f"{low:.1f}-{high:.1f}{unit}"


async def bench_case(case: Case, repeat: int, publishers: list[str]) -> None:
    print(f"\n{case.title}", flush=True)
    print(
        f"{'run':>4} {'system':<9} {'fired/expected':>19} {'missing':>8} {'p50 ms':>8}"
        f" {'p99 ms':>8} {'max ms':>8} {'load s':>8}",
        flush=True,
    )
    runs: dict[str, list[Result]] = {}
    for index in range(1, repeat + 1):
        ours = [await run_natscron(case, publisher) for publisher in publishers]
        for result in ours:
            print(row(index, result), flush=True)
        theirs = await run_server(case)
        print(row(index, theirs), flush=True)
        for result in [*ours, theirs]:
            runs.setdefault(result.system, []).append(result)
            for note in result.notes:
                print(f"       {result.system}: {note}", flush=True)
        for result in ours:
            print(
                f"{index:>4} ratio p99 {result.system}/server: {figure(ratio(result, theirs))}",
                flush=True,
            )
    server = runs.pop("server")
    for system, results in runs.items():
        ratios = [ratio(result, theirs) for result, theirs in zip(results, server, strict=True)]
        print(
            f"  over {repeat} runs: p99 {system} {span([r.p99 for r in results], ' ms')},"
            f" server {span([r.p99 for r in server], ' ms')}; ratio {span(ratios)};"
            f" max {system} {span([r.max for r in results], ' ms')},"
            f" server {span([r.max for r in server], ' ms')};"
            f" missing {system} {max(r.missing for r in results):,},"
            f" server {max(r.missing for r in server):,} (worst run)",
            flush=True,
        )


def ratio(ours: Result, theirs: Result) -> float:
    return ours.p99 / theirs.p99 if theirs.p99 > 0 else math.nan


async def bench(arguments: argparse.Namespace) -> None:
    cases = [
        Case("rate", rate, arguments.seconds, arguments.warmup, 0.0, 0.0)
        for rate in arguments.rates
    ]
    if arguments.burst > 0:
        cases.append(
            Case("burst", arguments.burst, 1, 0.0, arguments.burst_lead, arguments.burst_timeout)
        )
    print(
        "lateness = JetStream stored time - slot; natscron: one ticker process;"
        " server: nats-server ADR-51 schedules",
        flush=True,
    )
    for case in cases:
        await bench_case(case, arguments.repeat, arguments.publishers)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rates", type=int, nargs="*", default=[500, 2_000])
    parser.add_argument("--burst", type=int, default=100_000, help="0: no burst case")
    parser.add_argument("--seconds", type=int, default=20, help="measured window")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before the window")
    parser.add_argument(
        "--burst-lead",
        type=float,
        default=90.0,
        help="seconds from the start of loading to the burst's slot",
    )
    parser.add_argument(
        "--burst-timeout",
        type=float,
        default=120.0,
        help="seconds after the burst's slot to await its messages",
    )
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument(
        "--publishers",
        nargs="+",
        choices=list(PUBLISHERS),
        default=["bulk"],
        help="the ticker's publishers to measure, one ticker run each per repeat",
    )
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
