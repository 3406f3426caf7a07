"""What one rate measured: snapshots around the window, and the `jobs` documents after it.

A snapshot (at the window's start and end) holds each process's CPU time, each
service's `/metrics`, MongoDB's operation counters (`serverStatus`, `top`) and the
JetStream streams' and consumers' positions. The latencies come from the `jobs`
documents whose slot (`scheduled_for`) lies in the window, read after the drain:

    slot -> created_at      ticker   (the slot found due)
    created_at -> started_at  queue  (publication, JetStream, runner pickup)
    started_at -> completed_at  run  (the noop scrape)
    completed_at -> updated_at  record  (events through the recorder into MongoDB)
    slot -> updated_at      end_to_end (the `completed` document written)

`updated_at` is the recorder's clock when it wrote the last event, which for a
completed job is its `completed` event. `created_at` is the ticker's "now" when it
found the slot due, not when it published it: a ticker slow to publish shows in the
`queue` stage, and in its own `natscron_ticker_fire_lag_seconds` (slot -> publication
acked), which is reported beside the stages.
"""

import asyncio
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from nats.js import JetStreamContext
from nats.js.api import ConsumerInfo
from pymongo import AsyncMongoClient

from bench.processes import (
    CpuTimes,
    LogScan,
    Samples,
    Scrape,
    Stack,
    command_line,
    histogram_bucket,
    summed,
)
from natscron_shared.contract import names
from natscron_shared.contract.enums import Priority
from natscron_shared.contract.pools import DEFAULT_POOL
from natscron_shared.contract.storage import JOBS, Document

STAGES: dict[str, tuple[str, str]] = {
    "ticker": ("scheduled_for", "created_at"),
    "queue": ("created_at", "started_at"),
    "run": ("started_at", "completed_at"),
    "record": ("completed_at", "updated_at"),
    "end_to_end": ("scheduled_for", "updated_at"),
}
TIMES = ("scheduled_for", "created_at", "started_at", "completed_at", "updated_at")
STREAMS = ("JOBS", "EVENTS")
RUNNER_NORMAL = names.runner_consumer(DEFAULT_POOL, Priority.NORMAL)
"""The runners' normal lane (of the default pool: a commit from before pools, `--ref`,
named it `runner-normal`)."""
CONSUMERS = (
    ("JOBS", RUNNER_NORMAL),
    ("JOBS", names.runner_consumer(DEFAULT_POOL, Priority.IMMEDIATE)),
    ("ITEMS", "recorder-items"),
)
RECORDER_EVENTS = "recorder-events"
"""The recorders' EVENTS consumers, summed: every consumer of EVENTS whose name starts with
it (`recorder-events` on main; a layout with more of them, `--ref`, is counted whole)."""
BACKLOG_CONSUMERS = {RUNNER_NORMAL: "JOBS", "recorder-events": "EVENTS"}
"""The consumers whose backlog tells whether the system keeps up, and their streams."""
FIRE_LAG = "natscron_ticker_fire_lag_seconds"
TOP_COUNTS = ("writeLock", "readLock", "insert", "update", "remove", "queries", "commands")
"""MongoDB's `top` counts commands (a bulk write of n documents is one), per collection."""


# ---------------------------------------------------------------- snapshots


@dataclass
class Snapshot:
    at: float
    cpu: dict[str, float]
    """CPU seconds of each process of the stack (with its descendants), by name."""
    processes: CpuTimes
    """... and of every process on the machine: the stack does not have it to itself."""
    metrics: dict[str, Scrape]
    mongo: Samples
    jetstream: Samples


async def mongo_counters(client: AsyncMongoClient[Document], database: str) -> Samples:
    """serverStatus opcounters and request count, and `top` counts of our collections."""
    counters: Samples = {}
    status = await client.admin.command("serverStatus")
    for name, value in status.get("opcounters", {}).items():
        counters[f"opcounters.{name}"] = float(value)
    counters["requests"] = float(status.get("network", {}).get("numRequests", 0))
    try:
        top = await client.admin.command("top")
    except Exception:  # `top` is optional; serverStatus suffices
        return counters
    for namespace, sections in top.get("totals", {}).items():
        if not isinstance(sections, dict) or not namespace.startswith(f"{database}."):
            continue
        collection = namespace.removeprefix(f"{database}.")
        for section in TOP_COUNTS:
            counters[f"top.{collection}.{section}"] = float(sections[section]["count"])
    return counters


async def jetstream_state(js: JetStreamContext) -> Samples:
    """Last sequence and size of the streams; position and backlog of the consumers."""
    state: Samples = {}
    for stream in STREAMS:
        info = await js.stream_info(stream)
        state[f"{stream}.last_seq"] = float(info.state.last_seq)
        state[f"{stream}.messages"] = float(info.state.messages)
    for stream, consumer in CONSUMERS:
        info = await js.consumer_info(stream, consumer)
        state[f"{consumer}.num_pending"] = float(info.num_pending or 0)
        state[f"{consumer}.num_ack_pending"] = float(info.num_ack_pending or 0)
        state[f"{consumer}.num_redelivered"] = float(info.num_redelivered or 0)
        state[f"{consumer}.ack_floor"] = float(info.ack_floor.stream_seq if info.ack_floor else 0)
    recorders = await recorder_event_consumers(js)
    for count in ("num_pending", "num_ack_pending", "num_redelivered"):
        state[f"{RECORDER_EVENTS}.{count}"] = float(sum(getattr(i, count) or 0 for i in recorders))
    return state


async def recorder_event_consumers(js: JetStreamContext) -> list[ConsumerInfo]:
    infos = await js.consumers_info("EVENTS")
    return [i for i in infos if i.name.startswith(RECORDER_EVENTS) and i.name != "webhooks"]


async def take_snapshot(
    stack: Stack, js: JetStreamContext, client: AsyncMongoClient[Document], database: str
) -> Snapshot:
    processes = CpuTimes.read()
    cpu = {name: processes.of(processes.tree(pid)) for name, pid in stack.pids().items()}
    at = asyncio.get_running_loop().time()
    scraped = await asyncio.gather(*(service.scrape() for service in stack.services))
    metrics = {
        service.name: samples
        for service, samples in zip(stack.services, scraped, strict=True)
        if samples is not None
    }
    mongo, jetstream = await asyncio.gather(mongo_counters(client, database), jetstream_state(js))
    return Snapshot(
        at=at, cpu=cpu, processes=processes, metrics=metrics, mongo=mongo, jetstream=jetstream
    )


@dataclass
class MachineCpu:
    """Cores used during the window by the whole machine, by the benchmark process, and by
    processes that are neither it nor the stack (other work sharing the machine)."""

    machine: float
    bench: float
    others: float
    busiest_others: list[str]
    """The three other processes that used the most, as "cores pid command"."""


def machine_cpu(
    before: Snapshot, after: Snapshot, stack_pids: list[int], bench_pid: int
) -> MachineCpu:
    wall = after.at - before.at
    ours = set().union(*(after.processes.tree(pid) for pid in stack_pids)) | {bench_pid}
    used = {
        pid: (seconds - before.processes.seconds.get(pid, 0.0)) / wall
        for pid, seconds in after.processes.seconds.items()
        if pid not in ours
    }
    busiest = sorted(used.items(), key=lambda item: item[1], reverse=True)[:3]
    stack = sum(after.cpu.values()) - sum(before.cpu.values())
    bench = (
        after.processes.seconds.get(bench_pid, 0.0) - before.processes.seconds.get(bench_pid, 0.0)
    ) / wall
    machine = (after.processes.machine_busy - before.processes.machine_busy) / wall
    return MachineCpu(
        machine=machine,
        bench=bench,
        others=machine - stack / wall - bench,
        busiest_others=[f"{cores:.2f} {pid} {command_line(pid)}" for pid, cores in busiest],
    )


# ---------------------------------------------------------------- jobs documents


async def read_jobs(client: AsyncMongoClient[Document], database: str) -> list[Document]:
    """The times and status of every job (one collection scan)."""
    projection = {"_id": 0, "status": 1, **dict.fromkeys(TIMES, 1)}
    cursor = client[database][JOBS].find({}, projection, batch_size=10_000)
    return await cursor.to_list()


@dataclass(frozen=True)
class Quantiles:
    """Seconds; None without values. Nearest-rank percentiles."""

    n: int
    p50: float | None
    p99: float | None
    max: float | None

    @classmethod
    def of(cls, values: list[float]) -> "Quantiles":
        if not values:
            return cls(0, None, None, None)
        ordered = sorted(values)

        def rank(q: float) -> float:
            return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]

        return cls(len(ordered), rank(50), rank(99), ordered[-1])


def _seconds(job: Document, name: str) -> float | None:
    moment = job.get(name)
    return moment.timestamp() if moment is not None else None


def _stages(jobs: list[Document]) -> dict[str, Quantiles]:
    values: dict[str, list[float]] = {stage: [] for stage in STAGES}
    for job in jobs:
        for stage, (begin, finish) in STAGES.items():
            a, b = _seconds(job, begin), _seconds(job, finish)
            if a is not None and b is not None:
                values[stage].append(b - a)
    return {stage: Quantiles.of(found) for stage, found in values.items()}


def _lateness(jobs: list[Document]) -> Quantiles:
    """slot -> completed document."""
    return _stages(jobs)["end_to_end"]


@dataclass
class JobAnalysis:
    """Two views of one window [start, end).

    By slot (the issue's figures): the jobs whose slot lies in the window, as they stand
    after the drain. By write: the jobs whose `completed` document was written during
    the window, whatever their slot: when the system is far behind, no slot of the
    window completes, and these say how far behind it is and which stage holds it."""

    offered: int
    statuses: dict[str, int]
    """Of the window's slots that have a document."""
    completed: int
    stages: dict[str, Quantiles]
    first: Quantiles
    """slot -> completed document, for the slots of the window's first `edge` seconds."""
    last: Quantiles
    """... and of its last `edge` seconds: later than `first` means a growing backlog."""
    recorded_in_window: int
    recorded_stages: dict[str, Quantiles]
    """The stages of the jobs completed (written) during the window."""
    recorded_first: Quantiles
    """slot -> completed document, for those written in the window's first `edge` s..."""
    recorded_last: Quantiles
    """... and in its last `edge` s."""


@dataclass(frozen=True)
class Window:
    """`rate` jobs/s offered; measured over [start, start + seconds), wall-clock seconds;
    the first and last `edge` seconds are compared to spot a growing backlog."""

    rate: int
    start: float
    seconds: float
    edge: float

    @property
    def end(self) -> float:
        return self.start + self.seconds


def analyse_jobs(jobs: list[Document], window: Window) -> JobAnalysis:
    start, end, edge = window.start, window.end, window.edge
    statuses: Counter[str] = Counter()
    by_slot: list[Document] = []
    by_write: list[Document] = []
    for job in jobs:
        slot = _seconds(job, "scheduled_for")
        written = _seconds(job, "updated_at")
        done = job.get("status") == "completed"
        if done and written is not None and start <= written < end:
            by_write.append(job)
        if slot is not None and start <= slot < end:
            statuses[str(job.get("status"))] += 1
            if done:
                by_slot.append(job)

    def slot_in(low: float, high: float) -> list[Document]:
        return [job for job in by_slot if low <= job["scheduled_for"].timestamp() < high]

    def written_in(low: float, high: float) -> list[Document]:
        return [job for job in by_write if low <= job["updated_at"].timestamp() < high]

    return JobAnalysis(
        offered=int(window.rate * window.seconds),
        statuses=dict(statuses),
        completed=len(by_slot),
        stages=_stages(by_slot),
        first=_lateness(slot_in(start, start + edge)),
        last=_lateness(slot_in(end - edge, end)),
        recorded_in_window=len(by_write),
        recorded_stages=_stages(by_write),
        recorded_first=_lateness(written_in(start, start + edge)),
        recorded_last=_lateness(written_in(end - edge, end)),
    )


# ---------------------------------------------------------------- one rate's result


def deltas(before: Samples, after: Samples) -> Samples:
    return {key: after[key] - before.get(key, 0.0) for key in after}


@dataclass
class Backlog:
    """Messages a consumer has not acked (pending + ack pending) and what flowed in."""

    start: float
    end: float
    inflow: float
    """Messages added to its stream during the window."""

    @property
    def growth(self) -> float:
        return self.end - self.start


@dataclass
class RateResult:
    rate: int
    seconds: float
    jobs: JobAnalysis
    fired_per_s: float | None
    skipped_per_s: float | None
    cpu_cores: dict[str, float]
    machine_cpu: MachineCpu
    backlog: dict[str, Backlog]
    mongo_per_job: dict[str, float] | None
    """Commands per job recorded in the window; None if nothing was recorded."""
    mongo_counts: Samples
    metric_deltas: dict[str, Samples]
    """Counters, histograms and summaries of each service: window end minus start."""
    metric_gauges: dict[str, Samples]
    """Gauges of each service at the window's end."""
    ticker_fire_lag: dict[str, Any]
    """Slot -> publication acked, from the ticker's histogram: the exact mean, and the
    buckets (lower, upper bound) that hold p50 and p99."""
    drain_seconds: float
    drained: bool
    exit_codes: dict[str, int | None]
    log_problems: dict[str, LogScan]
    notes: list[str] = field(default_factory=list)

    @property
    def completed_per_s(self) -> float:
        return self.jobs.completed / self.seconds

    @property
    def recorded_per_s(self) -> float:
        return self.jobs.recorded_in_window / self.seconds

    @property
    def recorder_per_job(self) -> dict[str, float] | None:
        """Every `natscron_recorder_*` counter's delta per job completed during the window
        (whatever write or batch counters the recorder has); None if none completed."""
        jobs = self.jobs.recorded_in_window
        if jobs <= 0:
            return None
        return {key: value / jobs for key, value in self.recorder_deltas.items()}

    @property
    def recorder_deltas(self) -> Samples:
        """Every `natscron_recorder_*` counter's delta, summed over the recorders (but the
        one series per schedule of `natscron_recorder_schedule_runs_total`)."""
        summed: Samples = {}
        for service, deltas in self.metric_deltas.items():
            if not service.startswith("recorder"):
                continue
            for key, value in deltas.items():
                per_schedule = key.startswith("natscron_recorder_schedule_runs_total{")
                if (
                    key.startswith("natscron_recorder_")
                    and "_bucket" not in key
                    and not per_schedule
                    and value
                ):
                    summed[key] = summed.get(key, 0.0) + value
        return summed

    @property
    def documents_per_job(self) -> dict[str, float] | None:
        """Documents the recorders wrote per job completed during the window, by
        `collection/kind`, and their total."""
        per_job = self.recorder_per_job
        if per_job is None:
            return None
        prefix = "natscron_recorder_documents_written_total"
        documents = {
            _labels_text(key): value for key, value in per_job.items() if key.startswith(prefix)
        }
        return {**documents, "total": sum(documents.values())}

    @property
    def mongo_cpu_seconds_per_1000_jobs(self) -> float | None:
        jobs = self.jobs.recorded_in_window
        cores = self.cpu_cores.get("secantusdb")
        if jobs <= 0 or cores is None:
            return None
        return cores * self.seconds / jobs * 1000

    @property
    def done_fraction(self) -> float:
        return self.jobs.completed / self.jobs.offered if self.jobs.offered else 0.0

    def growing_backlog(self) -> list[str]:
        """Reasons to call the backlog growing; empty if it is not."""
        reasons = []
        for consumer, backlog in self.backlog.items():
            if backlog.growth > max(100.0, 0.02 * backlog.inflow):
                reasons.append(f"{consumer} backlog +{backlog.growth:.0f} messages")
        for view, first, last in (
            ("slots", self.jobs.first.p50, self.jobs.last.p50),
            ("writes", self.jobs.recorded_first.p50, self.jobs.recorded_last.p50),
        ):
            if first is not None and last is not None and last - first > 1.0:
                reasons.append(f"lateness p50 ({view}) {first:.2f} s -> {last:.2f} s")
        return reasons

    def sustained(self) -> bool:
        return self.done_fraction >= 0.99 and not self.growing_backlog()

    def as_json(self) -> dict[str, Any]:
        return {
            "rate": self.rate,
            "seconds": self.seconds,
            "offered": self.jobs.offered,
            "fired_per_s": self.fired_per_s,
            "skipped_per_s": self.skipped_per_s,
            "completed": self.jobs.completed,
            "completed_per_s": self.completed_per_s,
            "done_fraction": self.done_fraction,
            "recorded_per_s": self.recorded_per_s,
            "statuses": self.jobs.statuses,
            "stages": {stage: vars(q) for stage, q in self.jobs.stages.items()},
            "lateness_first": vars(self.jobs.first),
            "lateness_last": vars(self.jobs.last),
            "recorded_in_window": self.jobs.recorded_in_window,
            "recorded_stages": {s: vars(q) for s, q in self.jobs.recorded_stages.items()},
            "recorded_lateness_first": vars(self.jobs.recorded_first),
            "recorded_lateness_last": vars(self.jobs.recorded_last),
            "sustained": self.sustained(),
            "growing_backlog": self.growing_backlog(),
            "backlog": {
                name: {**vars(backlog), "growth": backlog.growth}
                for name, backlog in self.backlog.items()
            },
            "cpu_cores": self.cpu_cores,
            "machine_cpu": vars(self.machine_cpu),
            "mongo_per_job": self.mongo_per_job,
            "recorder_per_job": self.recorder_per_job,
            "mongo_counts": self.mongo_counts,
            "ticker_fire_lag": self.ticker_fire_lag,
            "metric_deltas": self.metric_deltas,
            "metric_gauges": self.metric_gauges,
            "drain_seconds": self.drain_seconds,
            "drained": self.drained,
            "exit_codes": self.exit_codes,
            "log_problems": {name: vars(scan) for name, scan in self.log_problems.items()},
            "notes": self.notes,
        }


def mongo_per_job(counts: Samples, jobs: int) -> dict[str, float] | None:
    """Write and read commands on our collections, and all requests, per recorded job."""
    if jobs <= 0:
        return None
    writes = sum(v for k, v in counts.items() if k.startswith("top.") and k.endswith(".writeLock"))
    reads = sum(v for k, v in counts.items() if k.startswith("top.") and k.endswith(".readLock"))
    per_job = {
        "writes": writes / jobs,
        "reads": reads / jobs,
        "requests": counts.get("requests", 0.0) / jobs,
    }
    for key, value in counts.items():
        if key.startswith("top.") and key.endswith(".writeLock"):
            collection = key.removeprefix("top.").removesuffix(".writeLock")
            per_job[f"writes.{collection}"] = value / jobs
    return per_job


def _backlog(before: Snapshot, after: Snapshot, consumer: str, stream: str) -> Backlog:
    def unacked(snapshot: Snapshot) -> float:
        state = snapshot.jetstream
        return state[f"{consumer}.num_pending"] + state[f"{consumer}.num_ack_pending"]

    inflow = after.jetstream[f"{stream}.last_seq"] - before.jetstream[f"{stream}.last_seq"]
    return Backlog(start=unacked(before), end=unacked(after), inflow=inflow)


def _fire_lag(ticker: Samples | None) -> dict[str, Any]:
    if not ticker:
        return {"mean": None, "p50": None, "p99": None}
    count = ticker.get(f"{FIRE_LAG}_count", 0.0)
    return {
        "mean": ticker.get(f"{FIRE_LAG}_sum", 0.0) / count if count else None,
        "p50": histogram_bucket(ticker, FIRE_LAG, 0.50),
        "p99": histogram_bucket(ticker, FIRE_LAG, 0.99),
    }


def summarise(
    window: Window,
    before: Snapshot,
    after: Snapshot,
    jobs: list[Document],
    *,
    stack_pids: dict[str, int],
    drain_seconds: float,
    drained: bool,
    exit_codes: dict[str, int | None],
    log_problems: dict[str, LogScan],
    notes: list[str],
) -> RateResult:
    """One rate's result from the snapshots around its window and the jobs documents."""
    analysis = analyse_jobs(jobs, window)
    wall = after.at - before.at
    metric_deltas = {
        name: deltas(before.metrics[name].counters, after.metrics[name].counters)
        for name in after.metrics
        if name in before.metrics
    }
    servers = {"nats-server", "secantusdb"}
    missing = sorted(set(stack_pids) - set(metric_deltas) - servers)
    if missing:
        notes.append(f"no /metrics answer at the window's start or end from {missing}")
    ticker = metric_deltas.get("ticker")

    def ticker_rate(name: str) -> float | None:
        return None if ticker is None else summed(ticker, name) / window.seconds

    mongo_counts = deltas(before.mongo, after.mongo)
    return RateResult(
        rate=window.rate,
        seconds=window.seconds,
        jobs=analysis,
        fired_per_s=ticker_rate("natscron_ticker_slots_fired_total"),
        skipped_per_s=ticker_rate("natscron_ticker_slots_skipped_total"),
        cpu_cores={
            name: (after.cpu[name] - before.cpu.get(name, 0.0)) / wall for name in after.cpu
        },
        machine_cpu=machine_cpu(before, after, list(stack_pids.values()), os.getpid()),
        backlog={
            consumer: _backlog(before, after, consumer, stream)
            for consumer, stream in BACKLOG_CONSUMERS.items()
        },
        mongo_per_job=mongo_per_job(mongo_counts, analysis.recorded_in_window),
        mongo_counts=mongo_counts,
        metric_deltas=metric_deltas,
        metric_gauges={name: scrape.gauges for name, scrape in after.metrics.items()},
        ticker_fire_lag=_fire_lag(ticker),
        drain_seconds=drain_seconds,
        drained=drained,
        exit_codes=exit_codes,
        log_problems=log_problems,
        notes=notes,
    )


def _labels_text(sample_key: str) -> str:
    """`name{collection="jobs",kind="insert"}` as `jobs/insert`."""
    _, _, labels = sample_key.partition("{")
    values = [part.partition("=")[2].strip('"') for part in labels.rstrip("}").split(",") if part]
    return "/".join(values) or sample_key
