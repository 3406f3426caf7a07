"""A service whose loop loses its dependency fails loudly: `/healthz` turns 503, the
process exits non-zero with one line naming the loop, and the ticker lets go of the lease."""

import asyncio
import sys
from pathlib import Path

import httpx
import pytest
from nats.aio.client import Client
from nats.js.errors import KeyNotFoundError

from natscron.embedded import free_port
from natscron_shared.contract import names
from natscron_shared.runtime.endpoints import Endpoints
from natscron_shared.runtime.settings import Settings
from natscron_ticker import TickerService
from tests.cli.test_cli import service_env
from tests.waiting import eventually

pytestmark = pytest.mark.integration


async def test_ticker_whose_schedules_bucket_vanished_fails_and_releases_the_lease(
    settings: Settings, endpoints: Endpoints, nc: Client
) -> None:
    ticker = TickerService(settings, endpoints)
    await ticker.start()
    js = nc.jetstream()
    leases = await js.key_value(names.KV_TICKER_LEADER)
    await eventually(lambda: _holds(ticker), what="the ticker leads")
    await js.delete_key_value(names.KV_SCHEDULED_JOBS)
    await asyncio.wait_for(ticker.failed.wait(), 20)
    assert ticker.failure is not None and "ticker loop 'watch" in ticker.failure
    assert ticker.health_problems() == [ticker.failure]
    await ticker.stop()
    with pytest.raises(KeyNotFoundError):
        await leases.get(names.LEADER_KEY)


async def _holds(ticker: TickerService) -> bool:
    return ticker.is_leader


async def test_runner_process_whose_consumer_was_deleted_exits_non_zero(
    endpoints: Endpoints, nc: Client, tmp_path: Path
) -> None:
    port = free_port()
    env = service_env(endpoints, tmp_path, port)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "natscron.cli.main",
        "runner",
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            await eventually(lambda: _status(http, "/readyz"), lambda s: s == 200, what="ready")
            await nc.jetstream().delete_consumer(names.STREAM_JOBS, "runner-default-normal")
            await nc.jetstream().delete_consumer(names.STREAM_JOBS, "runner-default-immediate")
        _, err = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    log = err.decode()
    assert process.returncode == 1, log
    assert log.count("runner loop 'pull' died") == 2, log  # the log line, and the exit message


async def _status(http: httpx.AsyncClient, path: str) -> int:
    try:
        return (await http.get(path)).status_code
    except httpx.TransportError:
        return 0
