"""Answers `natscron.ticker.status` for one ticker: whether it leads and since when, so the
API learns who leads without reading the lease (`natscron_shared.contract.ticker_status`)."""

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg

from natscron_shared.contract.names import TICKER_STATUS
from natscron_shared.contract.presence import presence_subject
from natscron_shared.contract.ticker_status import TickerStatus
from natscron_shared.nats.connection import to_json
from natscron_shared.runtime.clock import Clock

log = logging.getLogger(__name__)


class TickerStatusReply:
    """`leading` is asked at each request (the lease's own verdict); `lease_changed` is
    told when it takes or loses the lease, which dates `leading_since`."""

    def __init__(
        self,
        ticker_id: str,
        leading: Callable[[], bool],
        schedules_loaded: Callable[[], int],
        clock: Clock,
    ) -> None:
        self._ticker_id = ticker_id
        self._leading = leading
        self._schedules_loaded = schedules_loaded
        self._clock = clock
        self._leading_since: datetime | None = None

    def lease_changed(self, leading: bool) -> None:
        self._leading_since = self._clock.now() if leading else None

    def status(self) -> TickerStatus:
        leading = self._leading()
        return TickerStatus(
            ticker_id=self._ticker_id,
            leading=leading,
            leading_since=self._leading_since if leading else None,
            schedules_loaded=self._schedules_loaded(),
            presence_subject=presence_subject(self._ticker_id),
            at=self._clock.now(),
        )

    async def serve(self, nc: Client) -> None:
        """Answer every status request until cancelled."""
        subscription = await nc.subscribe(TICKER_STATUS, cb=self._answer)
        await nc.flush()
        try:
            await asyncio.Event().wait()
        finally:
            with contextlib.suppress(nats.errors.Error):
                await subscription.unsubscribe()

    async def _answer(self, msg: Msg) -> None:
        if not msg.reply:
            return
        try:
            await msg.respond(to_json(self.status()))
        except nats.errors.Error as exc:
            log.warning("could not answer a ticker status request: %s", exc)
