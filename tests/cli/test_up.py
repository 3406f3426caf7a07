"""`natscron up` as a real process: one per data folder, no orphaned servers, found from
subfolders. Its servers are told apart from other processes by their parent pid."""

import asyncio
import os
import re
import signal
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from natscron.stack import ENDPOINTS_FILE, LOCK_FILE, hold_stack_lock
from tests.cli.test_cli import NATSCRON, cli_env
from tests.waiting import eventually

pytestmark = pytest.mark.integration

SERVERS = ["nats-server", "secantusd-py"]
DATA_DIR = ".natscron"
SERVICE_LOG = "natscron.log"
STOP_DEADLINE = 30.0


def _stat(pid: int) -> tuple[str, str, int] | None:
    """(command name, state, parent pid) of `pid`, or None when there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name_end = text.rindex(")")
    state, parent = text[name_end + 2 :].split()[:2]
    return text[text.index("(") + 1 : name_end], state, int(parent)


def children_of(pid: int) -> dict[int, str]:
    """Command name by pid of the live children of `pid`."""
    children = {}
    for entry in Path("/proc").iterdir():
        stat = _stat(int(entry.name)) if entry.name.isdigit() else None
        if stat is not None and stat[2] == pid and stat[1] != "Z":
            children[int(entry.name)] = stat[0]
    return children


def still_running(processes: dict[int, str]) -> dict[int, str]:
    """Those of `processes` alive under the same name (a zombie is dead, a reused pid another)."""
    running = {}
    for pid, name in processes.items():
        stat = _stat(pid)
        if stat is not None and stat[0] == name and stat[1] != "Z":
            running[pid] = name
    return running


def handles(pid: int, sig: signal.Signals) -> bool:
    """Whether `pid` has a handler for `sig` (its bit in SigCgt of /proc/<pid>/status)."""
    status = Path(f"/proc/{pid}/status").read_text()
    [caught] = re.findall(r"^SigCgt:\s*([0-9a-f]+)$", status, re.MULTILINE)
    return bool(int(caught, 16) >> (sig - 1) & 1)


@dataclass
class Up:
    process: asyncio.subprocess.Process
    output: Path
    servers: dict[int, str] = field(default_factory=dict)


@asynccontextmanager
async def running_up(cwd: Path, *args: str, **env: str) -> AsyncIterator[Up]:
    """`natscron up ARGS` on embedded servers in `cwd/.natscron`, with the `NATSCRON_*`
    settings `env`, stopped (servers too) at the end."""
    output = cwd / "up.out"
    with output.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            *NATSCRON,
            "up",
            *args,
            cwd=cwd,
            env=cli_env(**env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    up = Up(process, output)
    try:

        async def printed() -> str:
            return output.read_text()

        await eventually(printed, lambda text: "natscron is up" in text, within=60, what="up")
        up.servers = children_of(process.pid)
        yield up
    finally:
        await _stop(up)


async def _stop(up: Up) -> None:
    """SIGTERM and a deadline to stop; past it, SIGKILL for `up` and its servers alike."""
    try:
        if up.process.returncode is None:
            up.process.terminate()
            await asyncio.wait_for(up.process.wait(), STOP_DEADLINE)
    finally:
        if up.process.returncode is None:
            up.process.kill()
            await up.process.wait()
        for pid in still_running(up.servers):
            os.kill(pid, signal.SIGKILL)


async def run_cli(*args: str, cwd: Path) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *NATSCRON, *args, cwd=cwd, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode()


def nats_pids_in_log(data_dir: Path) -> set[int]:
    """Every nats-server that ever ran on `data_dir` prefixes its log lines with its pid."""
    log = (data_dir / "logs" / "nats.log").read_text()
    return {int(pid) for pid in re.findall(r"^\[(\d+)\]", log, re.MULTILINE)}


async def test_second_up_on_one_folder_exits_2_naming_the_holder_and_starts_nothing(
    tmp_path: Path,
) -> None:
    async with running_up(tmp_path) as first:
        code, out = await run_cli("up", cwd=tmp_path)
        data_dir = tmp_path / DATA_DIR

        assert code == 2, out
        assert f"already running here (pid {first.process.pid}, data folder {data_dir})" in out
        assert children_of(first.process.pid) == first.servers
        [nats_pid] = [pid for pid, name in first.servers.items() if name == "nats-server"]
        assert nats_pids_in_log(data_dir) == {nats_pid}


async def test_sighup_stops_up_and_both_servers(tmp_path: Path) -> None:
    """Sent once everything runs (the ticker leads): this is about the stop, not start-up."""
    async with running_up(tmp_path) as up:
        assert sorted(up.servers.values()) == SERVERS

        async def settled() -> bool:
            lease_held = "holds the lease" in (tmp_path / DATA_DIR / SERVICE_LOG).read_text()
            return lease_held and handles(up.process.pid, signal.SIGHUP)

        await eventually(settled, what="services started, the ticker leading")
        up.process.send_signal(signal.SIGHUP)
        code = await asyncio.wait_for(up.process.wait(), STOP_DEADLINE)
        assert code == 0, up.output.read_text()
        assert still_running(up.servers) == {}
        assert not (tmp_path / DATA_DIR / ENDPOINTS_FILE).exists()


async def test_killed_up_leaves_no_server_running_and_frees_its_folder(tmp_path: Path) -> None:
    async with running_up(tmp_path) as up:
        assert sorted(up.servers.values()) == SERVERS
        up.process.kill()
        await up.process.wait()
        with hold_stack_lock(tmp_path / DATA_DIR):
            assert (tmp_path / DATA_DIR / LOCK_FILE).read_text() == str(os.getpid())

        async def survivors() -> dict[int, str]:
            return still_running(up.servers)

        await eventually(survivors, lambda left: left == {}, what="servers stopped")


async def test_commands_find_up_from_a_subfolder_and_a_miss_says_where_it_looked(
    tmp_path: Path,
) -> None:
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    subfolder = project / "a" / "b"
    subfolder.mkdir(parents=True)
    elsewhere.mkdir()
    async with running_up(project):

        async def jobs() -> tuple[int, str]:
            return await run_cli("jobs", cwd=subfolder)

        code, out = await eventually(jobs, lambda answer: answer[0] == 0, what="the API answers")
        assert out.splitlines()[0] == "no runs match" or "JOB ID" in out.splitlines()[0]

        code, out = await run_cli("jobs", cwd=elsewhere)
        assert code == 1
        assert f"with a {DATA_DIR} folder in {elsewhere} or any of its parents" in out
