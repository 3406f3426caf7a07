"""The `natscron` command as a user runs it: real processes, real servers."""

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import httpx
import pytest
from nats.aio.client import Client

from natscron.embedded import free_port
from natscron.stack import ENDPOINTS_FILE
from natscron_shared.contract import names
from natscron_shared.runtime.endpoints import Endpoints
from tests.waiting import eventually

pytestmark = pytest.mark.integration

NATSCRON = [sys.executable, "-m", "natscron.cli.main"]
SCHEDULE = """
- scheduled_job_id: nightly
  name: Nightly
  cron_expression: "0 2 * * *"
  timezone: Europe/Berlin
  scraper: noop
"""


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NATSCRON_")}
    return {**env, **extra}


def service_env(endpoints: Endpoints, data_dir: Path, http_port: int) -> dict[str, str]:
    """One service alone, as a container runs it, on the test's servers."""
    return cli_env(
        NATSCRON_NATS_URL=endpoints.nats_url,
        NATSCRON_MONGO_URL=endpoints.mongo_url,
        NATSCRON_DATA_DIR=str(data_dir),
        NATSCRON_HTTP_HOST="127.0.0.1",
        NATSCRON_HTTP_PORT=str(http_port),
    )


async def run_cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *NATSCRON,
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_apply_rejects_bad_file_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "schedules.yaml"
    path.write_text(SCHEDULE.replace("0 2 * * *", "0 25 * * *"))
    code, _, err = await run_cli("apply", "-f", str(path), env=cli_env())
    assert code == 2
    assert f"{path}: scheduled_jobs[0].cron_expression" in err


async def test_apply_writes_schedules_to_kv(
    tmp_path: Path, endpoints: Endpoints, nc: Client
) -> None:
    path = tmp_path / "schedules.yaml"
    path.write_text(SCHEDULE)
    env = cli_env(NATSCRON_NATS_URL=endpoints.nats_url, NATSCRON_MONGO_URL=endpoints.mongo_url)
    code, out, err = await run_cli("apply", "-f", str(path), "--unchecked", env=env)
    assert (code, err) == (0, "")
    assert "applied 1 scheduled job(s): nightly" in out
    entry = await (await nc.jetstream().key_value(names.KV_SCHEDULED_JOBS)).get("nightly")
    assert entry.value is not None
    assert json.loads(entry.value)["timezone"] == "Europe/Berlin"


async def test_commands_without_servers_say_how_to_get_them(tmp_path: Path) -> None:
    code, _, err = await run_cli("jobs", env=cli_env(NATSCRON_DATA_DIR=str(tmp_path)))
    assert code == 1
    assert "natscron up" in err


def processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


async def test_up_demo_shows_runs_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    from natscron.demo import demo_schedules

    data_dir = tmp_path / "stack"
    env = cli_env(NATSCRON_DATA_DIR=str(data_dir), NATSCRON_HTTP_HOST="127.0.0.1")
    log_path = tmp_path / "up.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            *NATSCRON, "up", "--demo", env=env, stdout=asyncio.subprocess.PIPE, stderr=log
        )
    assert process.stdout is not None
    lines: list[str] = []
    try:

        async def next_line() -> str:
            assert process.stdout is not None
            line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
            lines.append(line)
            return line

        await eventually(
            next_line,
            lambda line: " completed " in line,
            within=60,
            what="a completed run on the terminal",
        )
        assert (data_dir / ENDPOINTS_FILE).exists()

        async def jobs() -> tuple[int, str, str]:
            return await run_cli("jobs", "--limit", "5", env=env)

        code, out, err = await eventually(jobs, lambda answer: answer[0] == 0, what="jobs")
        assert "completed" in out

        demo_id = demo_schedules("http://demo.invalid")[0].scheduled_job_id
        code, out, err = await run_cli("trigger", demo_id, env=env)
        assert code == 0, err
        assert out.startswith(f"triggered_{demo_id}_")
    finally:
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.communicate(), 60)

    assert process.returncode == 0, "".join(lines) + log_path.read_text()
    assert not (data_dir / ENDPOINTS_FILE).exists()
    assert "ticker running" in (data_dir / "natscron.log").read_text()
    assert processes_mentioning(str(data_dir)) == []


@pytest.mark.parametrize("service", ["ticker", "runner", "recorder"])
async def test_one_service_serves_health_and_stops_on_sigterm(
    service: str, endpoints: Endpoints, tmp_path: Path
) -> None:
    port = free_port()
    env = service_env(endpoints, tmp_path, port)
    process = await asyncio.create_subprocess_exec(
        *NATSCRON, service, env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:

            async def ready() -> int:
                try:
                    return (await http.get("/readyz")).status_code
                except httpx.TransportError:
                    return 0

            await eventually(ready, lambda status: status == 200, what=f"{service} ready")
            assert (await http.get("/healthz")).status_code == 200
            metrics = (await http.get("/metrics")).text
            assert f"natscron_{service}_" in metrics
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert f"{service} stopped" in err.decode()
