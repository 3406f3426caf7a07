"""The leader lease: one key in KV `ticker_leader`, whose bucket TTL expires it.

The holder renews by compare-and-set on the key's revision every quarter TTL. It
trusts its lease only for half a TTL after the start of its last successful write,
so a leader cut off from NATS stops firing well before the key can expire and a
standby can take over. Standbys retry `create` on a timer, because an expiring key
notifies no watcher.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable

import nats.errors
from nats.js.errors import KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from natscron_shared.names import LEADER_KEY

log = logging.getLogger(__name__)

RENEW_FRACTION = 0.25
TRUST_FRACTION = 0.5


class LeaderLease:
    def __init__(
        self,
        bucket: KeyValue,
        holder: str,
        ttl_seconds: float,
        on_change: Callable[[bool], None] = lambda _: None,
    ) -> None:
        self._bucket = bucket
        self._holder = holder
        self._ttl = ttl_seconds
        self._on_change = on_change
        self._revision: int | None = None
        self._trusted_until = 0.0
        self.leading = asyncio.Event()
        """Set while this ticker holds the lease (check `is_leader` before acting)."""
        self.standing_by = asyncio.Event()
        """Set while it does not; lets a leader's waits end the moment it loses the lease."""
        self.standing_by.set()

    @property
    def is_leader(self) -> bool:
        return self._revision is not None and self._now() < self._trusted_until

    async def run(self) -> None:
        """Hold or chase the lease until cancelled."""
        interval = self._ttl * RENEW_FRACTION
        while True:
            if self._revision is None:
                await self._try_acquire()
            else:
                await self._try_renew()
            wait = interval
            if self._revision is not None:
                wait = min(interval, max(0.0, self._trusted_until - self._now()))
            await asyncio.sleep(wait)
            if self._revision is not None and not self.is_leader:
                self._lose("the lease could not be renewed in time")

    async def release(self) -> None:
        """Give the lease up at once, so a standby need not wait for the TTL."""
        revision, self._revision = self._revision, None
        if revision is None:
            return
        with contextlib.suppress(nats.errors.Error, TimeoutError):
            await self._bucket.delete(LEADER_KEY, last=revision)
        self._announce(False)

    async def _try_acquire(self) -> None:
        started = self._now()
        try:
            revision = await self._bucket.create(LEADER_KEY, self._holder.encode())
        except KeyWrongLastSequenceError:
            return
        except (nats.errors.Error, TimeoutError) as exc:
            log.warning("could not try for the ticker lease: %s", exc)
            return
        self._revision = revision
        self._trusted_until = started + self._ttl * TRUST_FRACTION
        log.info("ticker %s holds the lease", self._holder)
        self._announce(True)

    async def _try_renew(self) -> None:
        assert self._revision is not None
        started = self._now()
        try:
            self._revision = await self._bucket.update(
                LEADER_KEY, self._holder.encode(), last=self._revision
            )
        except KeyWrongLastSequenceError:
            self._lose("another ticker holds the lease")
            return
        except (nats.errors.Error, TimeoutError) as exc:
            log.warning("could not renew the ticker lease: %s", exc)
            return
        self._trusted_until = started + self._ttl * TRUST_FRACTION

    def _lose(self, reason: str) -> None:
        self._revision = None
        log.warning("ticker %s lost the lease: %s", self._holder, reason)
        self._announce(False)

    def _announce(self, leading: bool) -> None:
        (self.leading if leading else self.standing_by).set()
        (self.standing_by if leading else self.leading).clear()
        self._on_change(leading)

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()
