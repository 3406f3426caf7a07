"""Answers `natscron.ticker.status` for one ticker: whether it leads and since when, so the
API learns who leads without reading the lease (`natscron_shared.contract.ticker_status`).

Every ticker answers each request: its endpoint is in a queue group of its own."""

from collections.abc import Callable
from datetime import datetime

from natscron_shared.contract.names import TICKER_STATUS
from natscron_shared.contract.presence import instance_token, presence_subject
from natscron_shared.contract.ticker_status import TickerStatus, TickerStatusProbe
from natscron_shared.nats.request_reply import Endpoint
from natscron_shared.runtime.clock import Clock


class TickerStatusReply:
    """`leading` is asked at each request (the lease's own verdict); `lease_changed` is
    told when it takes or loses the lease, which dates `leading_since`."""

    def __init__(
        self,
        ticker_id: str,
        leading: Callable[[], bool],
        schedules_loaded: Callable[[], int],
        clock: Clock,
        *,
        last_check: Callable[[], datetime | None],
        slots_fired: Callable[[], int],
    ) -> None:
        self._ticker_id = ticker_id
        self._leading = leading
        self._schedules_loaded = schedules_loaded
        self._clock = clock
        self._last_check = last_check
        self._slots_fired = slots_fired
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
            last_check=self._last_check(),
            slots_fired=self._slots_fired(),
            presence_subject=presence_subject(self._ticker_id),
            at=self._clock.now(),
        )

    def endpoint(self) -> Endpoint[TickerStatusProbe]:
        return Endpoint(
            TICKER_STATUS,
            TickerStatusProbe,
            self._answer,
            "This ticker's status: whether it leads and since when; every ticker answers",
            queue_group=f"ticker-{instance_token(self._ticker_id)}",
        )

    async def _answer(self, _: TickerStatusProbe) -> TickerStatus:
        return self.status()
