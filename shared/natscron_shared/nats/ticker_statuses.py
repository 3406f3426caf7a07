"""Gathering every ticker's status: one request on `natscron.ticker.status`, answered by
each ticker (no queue group).

The asker cannot know how many tickers run, so it collects replies for a short window;
NATS's "no responders" ends the wait at once when none runs.
"""

import asyncio
import logging

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from pydantic import ValidationError

from natscron_shared.contract.names import TICKER_STATUS
from natscron_shared.contract.ticker_status import TickerStatus, TickerStatusProbe

log = logging.getLogger(__name__)

GATHER_SECONDS = 0.25
NO_RESPONDERS = "503"


async def gather_ticker_statuses(nc: Client, within: float = GATHER_SECONDS) -> list[TickerStatus]:
    """Every ticker's answer that arrives `within` seconds, sorted by id; a reply that is
    not a `TickerStatus` is logged and left out."""
    replies: asyncio.Queue[Msg] = asyncio.Queue()

    async def collect(msg: Msg) -> None:
        replies.put_nowait(msg)

    inbox = nc.new_inbox()
    subscription = await nc.subscribe(inbox, cb=collect)
    statuses: dict[str, TickerStatus] = {}
    try:
        await nc.publish(TICKER_STATUS, TickerStatusProbe().model_dump_json().encode(), inbox)
        deadline = asyncio.get_running_loop().time() + within
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            try:
                msg = await asyncio.wait_for(replies.get(), left)
            except TimeoutError:
                break
            if msg.headers and msg.headers.get("Status") == NO_RESPONDERS:
                break
            status = _parsed(msg)
            if status is not None:
                statuses[status.ticker_id] = status
    finally:
        try:
            await subscription.unsubscribe()
        except nats.errors.Error as exc:
            log.warning("could not end the ticker status gathering: %s", exc)
    return sorted(statuses.values(), key=lambda status: status.ticker_id)


def _parsed(msg: Msg) -> TickerStatus | None:
    try:
        return TickerStatus.model_validate_json(msg.data)
    except ValidationError as exc:
        log.warning("ignoring a ticker status reply that is not one: %s", exc.errors()[:1])
        return None
