"""The processes of one benchmark stack: start them, watch them, stop them.

nats-server and SecantusDB come from `natscron.embedded`; each service is its own
`python -m natscron.cli.main <service>` process, as deployed, logging to a file and
serving `/metrics` and `/readyz` on a port chosen here. Every process started is stopped
(SIGTERM, then SIGKILL after a deadline) by `Stack.stop()`, and on Linux the kernel also
stops it if the benchmark itself dies.
"""

import asyncio
import contextlib
import io
import math
import os
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from nats.aio.client import Client
from nats.js import JetStreamContext
from prometheus_client.parser import text_string_to_metric_families

from natscron.embedded import EmbeddedServer, die_with_parent, free_port, start_mongo, start_nats

CLI_MODULE = "natscron.cli.main"
READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 15.0
HTTP_TIMEOUT_SECONDS = 10.0
SHUTDOWN_GRACE_SECONDS = 5.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
WORKSPACE_PATHS = ("", "shared", "services/ticker", "services/runner", "services/recorder")
"""Where the packages live in a natscron source tree, relative to its root."""

Samples = dict[str, float]
"""Prometheus samples by `name{label="value",...}`."""


def export_source(repo: Path, ref: str, into: Path) -> str:
    """Extract `ref` of `repo` (read-only: `git archive`) into `into`; returns the commit."""
    commit = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--verify", f"{ref}^{{commit}}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    archive = subprocess.run(
        ["git", "-C", str(repo), "archive", "--format=tar", commit],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return commit


def service_environment(source: Path | None, settings: dict[str, str]) -> dict[str, str]:
    """Our environment without any NATSCRON_* of the caller, plus `settings`; with a
    `source` tree, its packages come first on the path (ahead of the editable installs)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("NATSCRON_")}
    env.update(settings)
    if source is not None:
        paths = [str(source / sub) for sub in WORKSPACE_PATHS]
        env["PYTHONPATH"] = os.pathsep.join([*paths, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


@dataclass(frozen=True)
class CpuTimes:
    """One reading of /proc: each process's user + system CPU seconds, its parent, and
    the seconds the whole machine was busy (all CPUs: not idle, not waiting for I/O)."""

    seconds: dict[int, float]
    parents: dict[int, int]
    machine_busy: float

    @classmethod
    def read(cls) -> "CpuTimes":
        seconds: dict[int, float] = {}
        parents: dict[int, int] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                # The command name may hold spaces and parentheses: split after the last ')'.
                fields = stat.read_text().rsplit(")", 1)[1].split()
                pid = int(stat.parent.name)
                parents[pid] = int(fields[1])
                seconds[pid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        ticks = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        idle = ticks[3] + ticks[4]  # idle, iowait
        busy = sum(ticks[:8]) - idle  # user nice system idle iowait irq softirq steal
        return cls(seconds=seconds, parents=parents, machine_busy=busy / CLOCK_TICKS)

    def tree(self, pid: int) -> set[int]:
        """`pid` and its descendants."""
        children: dict[int, list[int]] = {}
        for child, parent in self.parents.items():
            children.setdefault(parent, []).append(child)
        found, todo = set(), [pid]
        while todo:
            current = todo.pop()
            found.add(current)
            todo.extend(children.get(current, []))
        return found

    def of(self, pids: set[int]) -> float:
        return sum(self.seconds.get(pid, 0.0) for pid in pids)


def command_line(pid: int) -> str:
    with contextlib.suppress(OSError):
        words = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        return " ".join(word.decode(errors="replace") for word in words if word)[:160]
    return "(gone)"


async def http_get(port: int, path: str, within: float = HTTP_TIMEOUT_SECONDS) -> tuple[int, str]:
    """(status, body) of one GET on 127.0.0.1:port, within `within` seconds."""
    async with asyncio.timeout(within):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
            writer.write(request.encode())
            await writer.drain()
            raw = await reader.read()
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body.decode("utf-8", "replace")


@dataclass
class Scrape:
    """One `/metrics` answer: counters (histogram and summary samples too, buckets
    included), which the benchmark subtracts, and gauges, which it reads."""

    counters: Samples
    gauges: Samples


def parse_metrics(text: str) -> Scrape:
    scrape = Scrape(counters={}, gauges={})
    for family in text_string_to_metric_families(text):
        into = (
            scrape.counters if family.type in ("counter", "histogram", "summary") else scrape.gauges
        )
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            into[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return scrape


def summed(samples: Samples, name: str) -> float:
    """A counter's samples added up across its labels (0 without any)."""
    return sum(v for k, v in samples.items() if k == name or k.startswith(name + "{"))


def histogram_bucket(counters: Samples, name: str, q: float) -> tuple[float, float | None] | None:
    """The bucket (lower, upper bound) holding the q-quantile (0..1) of an unlabelled
    histogram's (delta) samples (upper None: +Inf); None without observations. Only the
    bucket is known:
    interpolating inside a wide one (30 s .. 300 s) would invent a figure."""
    prefix = f'{name}_bucket{{le="'
    buckets = sorted(
        (float(key[len(prefix) : -2]), count)
        for key, count in counters.items()
        if key.startswith(prefix)
    )
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower = 0.0
    for bound, count in buckets:
        if count >= rank:
            return lower, None if math.isinf(bound) else bound
        lower = bound
    return lower, None


@dataclass
class LogScan:
    """Problem lines of one log: counts, and a few distinct examples."""

    errors: int = 0
    """Lines with ERROR or CRITICAL, and tracebacks."""
    warnings: int = 0
    examples: list[str] = field(default_factory=list)


PROBLEM_WORDS = ("ERROR", "CRITICAL", "Traceback", "panic", "[FTL]", "[ERR]")
MAX_EXAMPLES = 8


def scan_log(path: Path) -> LogScan:
    scan = LogScan()
    seen: set[str] = set()
    with contextlib.suppress(OSError):
        for line in path.read_text(errors="replace").splitlines():
            if any(word in line for word in PROBLEM_WORDS):
                scan.errors += 1
            elif "WARNING" in line or "[WRN]" in line:
                scan.warnings += 1
            else:
                continue
            # Without its timestamp, so repeats of one message count once.
            message = line.split(" ", 2)[-1][:300]
            if message not in seen and len(scan.examples) < MAX_EXAMPLES:
                seen.add(message)
                scan.examples.append(line[:400])
    return scan


@dataclass
class ServiceProcess:
    """One `natscron <command>` process with its HTTP port and log file."""

    name: str
    port: int
    process: asyncio.subprocess.Process
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def is_running(self) -> bool:
        return self.process.returncode is None

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    async def wait_ready(self, within: float = READY_TIMEOUT_SECONDS) -> None:
        """Until `/readyz` answers 200; raises if the process exits or the time runs out."""
        deadline = time.monotonic() + within
        last = "no answer"
        while time.monotonic() < deadline:
            if not self.is_running():
                raise RuntimeError(
                    f"{self.name} exited with code {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                status, body = await http_get(self.port, "/readyz", within=2.0)
            except (OSError, TimeoutError, ValueError, IndexError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if status == 200:
                    return
                last = f"{status} {body.strip()}"
            await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {within:.0f} s ({last})")

    async def scrape(self) -> Scrape | None:
        """The process's metrics now, or None if it did not answer in time."""
        try:
            status, body = await http_get(self.port, "/metrics")
        except (OSError, TimeoutError, ValueError, IndexError):
            return None
        return parse_metrics(body) if status == 200 else None

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after STOP_TIMEOUT_SECONDS."""
        if self.is_running():
            self.process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(STOP_TIMEOUT_SECONDS):
                    await self.process.wait()
            except TimeoutError:
                print(f"  {self.name} did not stop in {STOP_TIMEOUT_SECONDS:.0f} s; killing it")
                self.process.kill()
                await self.process.wait()


@dataclass
class Stack:
    """nats-server, SecantusDB and the service processes of one run, in `data`."""

    data: Path
    source: Path | None
    settings: dict[str, str] = field(default_factory=dict)
    nats: EmbeddedServer | None = None
    mongo: EmbeddedServer | None = None
    services: list[ServiceProcess] = field(default_factory=list)

    @property
    def logs(self) -> Path:
        return self.data / "logs"

    async def start_servers(self) -> None:
        self.nats = await start_nats(self.data)
        self.mongo = await start_mongo(self.data)
        self.settings.update(
            {
                "NATSCRON_NATS_URL": self.nats.url,
                "NATSCRON_MONGO_URL": self.mongo.url,
                "NATSCRON_DATA_DIR": str(self.data),
                "NATSCRON_HTTP_HOST": "127.0.0.1",
                "NATSCRON_SHUTDOWN_GRACE_SECONDS": str(SHUTDOWN_GRACE_SECONDS),
            }
        )

    def environment(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return service_environment(self.source, {**self.settings, **(extra or {})})

    async def run_command(self, *args: str) -> str:
        """Run `natscron <args>` to completion; its output, or RuntimeError if it failed."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            CLI_MODULE,
            *args,
            env=self.environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        text = output.decode(errors="replace")
        if process.returncode != 0:
            raise RuntimeError(f"natscron {' '.join(args)} failed ({process.returncode}):\n{text}")
        return text

    async def start_service(
        self,
        name: str,
        command: str,
        extra: dict[str, str] | None = None,
        ready_within: float = READY_TIMEOUT_SECONDS,
        variant: str | None = None,
    ) -> ServiceProcess:
        """Start `natscron <command>` as `name` and wait until it is ready; or, given a
        `variant` (a benchmark's module that runs a changed service), `python -m <variant>`."""
        port = free_port()
        self.logs.mkdir(parents=True, exist_ok=True)
        log_path = self.logs / f"{name}.log"
        env = self.environment({"NATSCRON_HTTP_PORT": str(port), **(extra or {})})
        with log_path.open("ab") as log_file:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                *([CLI_MODULE, command] if variant is None else [variant]),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                # Own session: a Ctrl-C reaches only the benchmark, which stops us in order.
                start_new_session=True,
                preexec_fn=die_with_parent(),
            )
        service = ServiceProcess(name=name, port=port, process=process, log_path=log_path)
        self.services.append(service)
        await service.wait_ready(within=ready_within)
        return service

    def pids(self) -> dict[str, int]:
        """Every process to account CPU to, by name."""
        pids = {service.name: service.pid for service in self.services}
        if self.nats is not None:
            pids["nats-server"] = self.nats.process.pid
        if self.mongo is not None:
            pids["secantusdb"] = self.mongo.process.pid
        return pids

    def service(self, name: str) -> ServiceProcess:
        return next(service for service in self.services if service.name == name)

    async def stop_services(self) -> dict[str, int | None]:
        """Stop the services, last started first; their exit codes by name."""
        for service in reversed(self.services):
            await service.stop()
        return {service.name: service.process.returncode for service in self.services}

    async def stop(self) -> None:
        """Everything, services first; safe to call twice and after a failed start."""
        for service in reversed(self.services):
            with contextlib.suppress(Exception):
                await service.stop()
        for server in (self.nats, self.mongo):
            if server is not None:
                with contextlib.suppress(Exception):
                    await server.stop()


@contextlib.asynccontextmanager
async def provisioned_stack() -> AsyncIterator[tuple[Stack, JetStreamContext]]:
    """A fresh embedded stack in a temporary folder, provisioned, and a client of its own;
    everything stopped on the way out."""
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(Path(tmp), None)
        nc = Client()
        try:
            await stack.start_servers()
            await stack.run_command("provision")
            assert stack.nats is not None
            await nc.connect(stack.nats.url)
            yield stack, nc.jetstream()
        finally:
            if nc.is_connected:
                await nc.close()
            await stack.stop()
