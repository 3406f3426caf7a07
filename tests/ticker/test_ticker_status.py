"""`natscron.ticker.status`: every ticker answers, so the API tells who leads and since when
without reading the lease."""

import time
from datetime import datetime
from typing import Any

import httpx
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from natscron_shared.contract import names
from natscron_shared.nats.schedule_bucket import put_schedules
from natscron_shared.nats.ticker_statuses import gather_ticker_statuses
from tests.api.api_support import spec
from tests.api.test_api_micro import ask
from tests.conftest import StartTicker
from tests.waiting import eventually

pytestmark = pytest.mark.integration


async def test_status_names_the_leader_among_the_tickers_and_follows_a_takeover(
    http: httpx.AsyncClient, nc: Client, start_ticker: StartTicker
) -> None:
    await put_schedules(nc.jetstream(), [spec("a"), spec("b")])
    first = await start_ticker(ticker_id="ticker-first")
    second = await start_ticker(ticker_id="ticker-second")

    async def status() -> Any:
        return (await http.get("/api/v1/scheduler/status")).json()

    seen = await eventually(
        status,
        lambda s: s["leader"] is not None and len(s["tickers"]) == 2,
        what="a leader among two tickers",
    )
    leader = next(t for t in seen["tickers"] if t["leading"])
    standby = next(t for t in seen["tickers"] if not t["leading"])
    assert seen["leader"] == leader["ticker_id"]
    assert seen["leader_since"] == leader["leading_since"] is not None
    assert standby["leading_since"] is None
    assert {t["ticker_id"] for t in seen["tickers"]} == {"ticker-first", "ticker-second"}
    assert all(t["schedules_loaded"] == 2 for t in seen["tickers"])
    assert leader["last_check"] is not None and standby["last_check"] is None
    assert standby["slots_fired"] == 0 and isinstance(leader["slots_fired"], int)
    assert (await ask(nc, "status"))["leader"] == seen["leader"]

    leading = first if leader["ticker_id"] == first.ticker_id else second
    other = second if leading is first else first
    await leading.stop()
    after = await eventually(
        status, lambda s: s["leader"] == other.ticker_id, what="the standby took over"
    )
    assert [t["ticker_id"] for t in after["tickers"]] == [other.ticker_id]
    assert moment(after["leader_since"]) > moment(seen["leader_since"])


async def test_without_tickers_nobody_leads_and_no_one_waits(
    http: httpx.AsyncClient, nc: Client
) -> None:
    status = (await http.get("/api/v1/scheduler/status")).json()
    assert status["leader"] is None and status["leader_since"] is None
    assert status["tickers"] == []
    began = time.monotonic()
    assert await gather_ticker_statuses(nc, within=5.0) == []
    assert time.monotonic() - began < 2.0, "no responders should end the wait"


async def test_a_reply_that_is_no_status_is_left_out(nc: Client, start_ticker: StartTicker) -> None:
    ticker = await start_ticker(ticker_id="ticker-real")

    async def impostor(msg: Msg) -> None:
        await msg.respond(b'{"ticker_id": "impostor"}')

    await nc.subscribe(names.TICKER_STATUS, cb=impostor)
    await nc.flush()
    statuses = await eventually(
        lambda: gather_ticker_statuses(nc), what="the ticker answering its status"
    )
    assert [status.ticker_id for status in statuses] == [ticker.ticker_id]
    assert statuses[0].presence_subject.startswith(names.TICKER_PRESENCE_PREFIX)


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text)
