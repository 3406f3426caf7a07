"""What the benchmark prints and writes: one block per rate, the summary tables, the
JSON file, and a description of the run (code, servers, machine and its other load)."""

import asyncio
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.measure import RUNNER_NORMAL, Quantiles, RateResult
from bench.processes import CpuTimes, command_line, service_environment

OTHERS_WARNING_CORES = 0.1
"""Other processes using more than this during a window get named in a warning."""


def _t(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.0f}ms" if seconds < 1 else f"{seconds:.1f}s"


def _bucket(bounds: tuple[float, float | None] | None) -> str:
    """A histogram bucket, (lower, upper]."""
    if bounds is None:
        return "-"
    lower, upper = bounds
    if upper is None:
        return f">{_t(lower)}"
    return f"{_t(lower) if lower else '0'}-{_t(upper)}"


def _f(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _stage_text(stages: dict[str, Quantiles]) -> str:
    return ", ".join(f"{s} {_t(q.p50)}/{_t(q.p99)}" for s, q in stages.items())


def print_rate(result: RateResult) -> None:
    jobs = result.jobs
    lag = result.ticker_fire_lag
    print(
        f"  offered {jobs.offered} slots; fired {_f(result.fired_per_s)}/s"
        f" (merged {_f(result.skipped_per_s)}/s); ticker fire lag (metric) mean {_t(lag['mean'])}"
        f" p50 in {_bucket(lag['p50'])} p99 in {_bucket(lag['p99'])}"
    )
    print(
        f"  by slot: completed {jobs.completed} = {result.completed_per_s:.1f}/s"
        f" ({result.done_fraction:.1%}); statuses {jobs.statuses}"
    )
    print(
        f"    p50/p99: {_stage_text(jobs.stages)}; lateness p50 first {edge_text(jobs.first)}"
        f" -> last {edge_text(jobs.last)}"
    )
    print(f"  by write: completed during the window {result.recorded_per_s:.1f}/s")
    print(
        f"    p50/p99: {_stage_text(jobs.recorded_stages)}; lateness p50 first"
        f" {edge_text(jobs.recorded_first)} -> last {edge_text(jobs.recorded_last)}"
    )
    for consumer, backlog in result.backlog.items():
        print(
            f"  {consumer}: unacked {backlog.start:.0f} -> {backlog.end:.0f}"
            f" (inflow {backlog.inflow:.0f} msgs)"
        )
    verdict = "sustained" if result.sustained() else "NOT sustained"
    reasons = result.growing_backlog()
    print(f"  {verdict}" + (f": {'; '.join(reasons)}" if reasons else ""))
    print("  mongo per job completed during the window: " + _mongo_text(result.mongo_per_job))
    print("  cpu (cores): " + ", ".join(f"{n} {c:.2f}" for n, c in result.cpu_cores.items()))
    machine = result.machine_cpu
    print(
        f"  machine: {machine.machine:.2f} cores busy; benchmark {machine.bench:.2f};"
        f" other processes {machine.others:.2f}"
    )
    if machine.others > OTHERS_WARNING_CORES:
        print(
            "  WARNING: other work shared the machine; busiest: "
            + "; ".join(machine.busiest_others)
        )
    documents = result.documents_per_job
    print(
        "  documents written per job completed during the window: "
        + ("n/a" if documents is None else ", ".join(f"{k} {v:.3f}" for k, v in documents.items()))
    )
    mongo_cpu = result.mongo_cpu_seconds_per_1000_jobs
    print(
        "  SecantusDB CPU seconds per 1,000 jobs completed during the window: "
        + ("n/a" if mongo_cpu is None else f"{mongo_cpu:.2f}")
    )
    moved = result.recorder_deltas
    print(
        "  natscron_recorder_* deltas: "
        + (", ".join(f"{k} {v:g}" for k, v in moved.items()) or "none")
    )
    per_job = result.recorder_per_job
    print(
        "  ... per job completed during the window: "
        + ("n/a" if per_job is None else ", ".join(f"{k} {v:.2f}" for k, v in per_job.items()))
    )
    for name, scan in result.log_problems.items():
        if scan.errors or scan.warnings:
            print(f"  log {name}: {scan.errors} error lines, {scan.warnings} warnings")
            for line in scan.examples[:3]:
                print(f"    {line[:200]}")
    for note in result.notes:
        print(f"  note: {note}")


def edge_text(quantiles: Quantiles) -> str:
    return f"{_t(quantiles.p50)} (n={quantiles.n})"


def _mongo_text(per_job: dict[str, float] | None) -> str:
    if per_job is None:
        return "n/a (no job recorded during the window)"
    parts = [f"{k} {v:.2f}" for k, v in per_job.items()]
    return ", ".join(parts)


def print_table(results: list[RateResult]) -> None:
    print(
        "\n| offered/s | fired/s | completed/s | done | recorded/s | slot->completed doc"
        " p50/p99 | ticker | fire lag mean / p99 bucket | queue | run | record"
        " | lateness first->last 10 s"
        " | unacked JOBS / EVENTS at end | Mongo writes/job (reads, requests) | sustained |"
    )
    print("|" + "---|" * 15)
    for r in results:
        stages = r.jobs.stages
        mongo = r.mongo_per_job
        mongo_text = (
            "n/a"
            if mongo is None
            else f"{mongo['writes']:.2f} ({mongo['reads']:.2f}, {mongo['requests']:.2f})"
        )
        print(
            f"| {r.rate} | {_f(r.fired_per_s)} | {r.completed_per_s:.0f} | {r.done_fraction:.0%}"
            f" | {r.recorded_per_s:.0f}"
            f" | {_t(stages['end_to_end'].p50)} / {_t(stages['end_to_end'].p99)}"
            + f" | {_t(stages['ticker'].p50)} / {_t(stages['ticker'].p99)}"
            + f" | {_t(r.ticker_fire_lag['mean'])} / {_bucket(r.ticker_fire_lag['p99'])}"
            + "".join(
                f" | {_t(stages[s].p50)} / {_t(stages[s].p99)}" for s in ("queue", "run", "record")
            )
            + f" | {_t(r.jobs.first.p50)} -> {_t(r.jobs.last.p50)}"
            f" | {r.backlog[RUNNER_NORMAL].end:.0f} / {r.backlog['recorder-events'].end:.0f}"
            f" | {mongo_text} | {'yes' if r.sustained() else 'no'} |"
        )
    print("\nJobs completed during the window, whatever their slot (how far behind, and where):\n")
    print(
        "| offered/s | completed/s | slot->completed doc p50/p99 | ticker | queue | run"
        " | record | lateness first->last 10 s |"
    )
    print("|" + "---|" * 8)
    for r in results:
        st = r.jobs.recorded_stages
        print(
            f"| {r.rate} | {r.recorded_per_s:.0f}"
            + "".join(
                f" | {_t(st[s].p50)} / {_t(st[s].p99)}"
                for s in ("end_to_end", "ticker", "queue", "run", "record")
            )
            + f" | {_t(r.jobs.recorded_first.p50)} -> {_t(r.jobs.recorded_last.p50)} |"
        )
    names = list(results[0].cpu_cores) if results else []
    print("\nCPU, cores (CPU s per s of the window):\n")
    print("| offered/s | " + " | ".join(names) + " | stack | machine busy | other processes |")
    print("|" + "---|" * (len(names) + 4))
    for r in results:
        print(
            f"| {r.rate} | "
            + " | ".join(f"{r.cpu_cores.get(n, 0.0):.2f}" for n in names)
            + f" | {sum(r.cpu_cores.values()):.2f} | {r.machine_cpu.machine:.2f}"
            f" | {r.machine_cpu.others:.2f} |"
        )


def describe_source(repo: Path, source: Path | None, commit: str | None) -> dict[str, Any]:
    """Which code the services ran, checked by asking a service interpreter."""
    env = service_environment(source, {})
    probe = "import natscron, natscron_recorder; print(natscron_recorder.__file__)"
    imported = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=False
    ).stdout.strip()
    if commit is not None:
        return {"source": "commit", "commit": commit, "recorder_imported_from": imported}
    head = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(repo), "status", "--short"], capture_output=True, text=True, check=False
    ).stdout.splitlines()
    return {
        "source": "working tree",
        "head": head,
        "uncommitted": dirty,
        "recorder_imported_from": imported,
    }


def server_versions() -> dict[str, str]:
    from natscron.embedded import find_binary

    nats = subprocess.run(
        [find_binary("nats-server"), "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    from importlib.metadata import version

    return {"nats-server": nats, "mongo": f"SecantusDB {version('secantusdb')} (embedded)"}


def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs {model}, {platform.system()} {platform.release()}"


async def background_load(seconds: float = 3.0) -> dict[str, Any]:
    """What the machine is busy with before we start anything."""
    before, started = CpuTimes.read(), time.monotonic()
    await asyncio.sleep(seconds)
    after, wall = CpuTimes.read(), time.monotonic() - started
    used = {
        pid: (cpu - before.seconds.get(pid, 0.0)) / wall
        for pid, cpu in after.seconds.items()
        if pid != os.getpid()
    }
    busiest = sorted(used.items(), key=lambda item: item[1], reverse=True)[:3]
    return {
        "cores_busy": round((after.machine_busy - before.machine_busy) / wall, 2),
        "busiest": [f"{cores:.2f} {pid} {command_line(pid)}" for pid, cores in busiest],
    }


def write_json(path: Path, meta: dict[str, Any], results: list[RateResult]) -> None:
    document = {"meta": meta, "results": [result.as_json() for result in results]}
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_text(json.dumps(document, indent=2, default=str))
    partial.replace(path)
