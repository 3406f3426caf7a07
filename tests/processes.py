"""Service and server processes that a test can SIGKILL and start again, as an orchestrator
restarts a crashed container.

Each service runs as `python -m natscron.cli.main <service>`, as deployed: its own process,
its own HTTP port (`/readyz`, `/metrics`), and one log file that every incarnation appends
to (after a marker line), so a failing test can show what each of them said. A SecantusDB
server restarted on the same port and storage path is what a MongoDB restart looks like to
the recorder. Every process ever started is remembered, so a `finally` can kill them all
and check by their handles that none is left.
"""

import asyncio
import contextlib
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from natscron.embedded import EmbeddedServer, die_with_parent, free_port, start_mongo
from tests.cli.test_cli import NATSCRON, cli_env
from tests.waiting import eventually

READY_WITHIN = 30.0
HTTP_TIMEOUT_SECONDS = 5.0
LOG_TAIL_LINES = 40


async def http_get(port: int, path: str) -> tuple[int, str]:
    """(status, body) of one GET on 127.0.0.1:`port`; (0, why) when nothing answers.

    Raw asyncio streams rather than an HTTP client: the chaos test polls `/metrics` in a
    tight loop to kill a server within milliseconds of a commit, and the health server
    answers one request per connection anyway."""
    try:
        async with asyncio.timeout(HTTP_TIMEOUT_SECONDS):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
                await writer.drain()
                raw = await reader.read()
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except (OSError, TimeoutError) as exc:
        return 0, f"{type(exc).__name__}: {exc}"
    head, _, body = raw.partition(b"\r\n\r\n")
    try:
        return int(head.split(b" ", 2)[1]), body.decode("utf-8", "replace")
    except (IndexError, ValueError):
        return 0, f"not an HTTP answer: {raw[:100]!r}"


def sample_value(metrics_text: str, name: str, **labels: str) -> float | None:
    """The value of sample `name` (with `labels` among its labels) in Prometheus text."""
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                return float(sample.value)
    return None


@dataclass
class ServiceProcess:
    """One natscron service that can be SIGKILLed and started again with the same
    settings and port, like a container restarted by its orchestrator."""

    name: str
    service: str
    env: dict[str, str]
    port: int
    log_path: Path
    process: asyncio.subprocess.Process | None = None
    incarnations: list[asyncio.subprocess.Process] = field(default_factory=list)

    async def start(self) -> None:
        with self.log_path.open("ab") as log:
            log.write(f"--- test: starting {self.name} ---\n".encode())
            log.flush()
            self.process = await asyncio.create_subprocess_exec(
                *NATSCRON,
                self.service,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent(),
            )
        self.incarnations.append(self.process)

    async def wait_ready(self, within: float = READY_WITHIN) -> None:
        """Until `/readyz` answers 200; fails early, with the log, if the process exited."""

        async def readiness() -> tuple[int, str]:
            self.ensure_alive()
            return await self.get("/readyz")

        await eventually(
            readiness, lambda answer: answer[0] == 200, within=within, what=f"{self.name} ready"
        )

    def ensure_alive(self) -> None:
        """Fail at once, with its log, if the process exited: waiting on a dead service
        for its deadline would only hide why."""
        if self.process is None or self.process.returncode is not None:
            code = None if self.process is None else self.process.returncode
            raise AssertionError(f"{self.name} exited ({code}):\n{self.log_tail()}")

    async def kill(self) -> None:
        """SIGKILL: no shutdown code runs, in-flight work is simply gone."""
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()

    async def get(self, path: str) -> tuple[int, str]:
        return await http_get(self.port, path)

    async def metric(self, name: str, **labels: str) -> float | None:
        status, body = await self.get("/metrics")
        return sample_value(body, name, **labels) if status == 200 else None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class RestartableMongo:
    """A SecantusDB of the test's own (never the shared session server), on a fixed port
    and storage path, so it can be SIGKILLed and started again where the recorder's client
    expects it, with whatever its storage kept."""

    data_dir: Path
    port: int
    server: EmbeddedServer | None = None
    incarnations: list[asyncio.subprocess.Process] = field(default_factory=list)

    def url(self, database: str) -> str:
        return f"mongodb://127.0.0.1:{self.port}/{database}"

    async def start(self) -> None:
        self.server = await start_mongo(self.data_dir, port=self.port)
        self.incarnations.append(self.server.process)

    async def kill(self) -> None:
        if self.server is not None:
            if self.server.is_running():
                self.server.process.kill()
                await self.server.process.wait()
            self.server.log_file.close()
            self.server = None


@dataclass
class Fleet:
    """Every process a test starts, so that one `finally` kills them all."""

    log_dir: Path
    base_env: dict[str, str]
    services: list[ServiceProcess] = field(default_factory=list)
    mongo: RestartableMongo | None = None

    def service(self, name: str, service: str, **env: str) -> ServiceProcess:
        port = free_port()
        settings = {
            **self.base_env,
            "NATSCRON_HTTP_HOST": "127.0.0.1",
            "NATSCRON_HTTP_PORT": str(port),
            **env,
        }
        process = ServiceProcess(
            name=name,
            service=service,
            env=cli_env(**settings),
            port=port,
            log_path=self.log_dir / f"{name}.log",
        )
        self.services.append(process)
        return process

    async def kill_all(self) -> None:
        for service in self.services:
            await service.kill()
        if self.mongo is not None:
            await self.mongo.kill()

    def survivors(self) -> list[str]:
        """Processes ever started that have not exited, by their handles."""
        handles: list[tuple[str, asyncio.subprocess.Process]] = [
            (s.name, p) for s in self.services for p in s.incarnations
        ]
        if self.mongo is not None:
            handles += [("mongodb", p) for p in self.mongo.incarnations]
        return [f"{name} (pid {p.pid})" for name, p in handles if p.returncode is None]

    def log_tails(self) -> str:
        parts = [f"===== {s.name} ({s.log_path}) =====\n{s.log_tail()}" for s in self.services]
        if self.mongo is not None:
            mongo_log = self.mongo.data_dir / "logs" / "mongo.log"
            with contextlib.suppress(OSError):
                tail = mongo_log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
                parts.append(f"===== mongodb ({mongo_log}) =====\n" + "\n".join(tail))
        return "\n".join(parts)


async def promptly(
    probe: Callable[[], Awaitable[float | None]],
    until: Callable[[float | None], bool],
    within: float,
    what: str,
) -> float | None:
    """Poll `probe` back to back until `until(value)` holds, and return that value.

    Not `eventually`: its 50 ms poll interval is too coarse when the point is to act
    within milliseconds of the change (a commit the recorder just made, a job a runner
    just started). Bounded by `within` all the same."""
    deadline = time.monotonic() + within
    while True:
        value = await probe()
        if until(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {within}s (last {value!r})")
        await asyncio.sleep(0)


async def first_change(
    probe: Callable[[], Awaitable[float | None]], within: float, what: str
) -> float | None:
    """`promptly`, until the value differs from the one read first."""
    before = await probe()
    return await promptly(
        probe, lambda now: now is not None and now != before, within, f"{what} changes"
    )
