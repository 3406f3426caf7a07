"""The leader lease: one key in KV `ticker_leader`, whose bucket TTL expires it.

Holding: the holder renews by compare-and-set on the key's revision every quarter TTL,
and retries a failed renewal within a second. It trusts its lease for half a TTL from
the start of its last successful write, and only while its connection is the one that
made that write: a holder that lost NATS stops firing at once, before a standby may act.

Chasing: a standby looks at the key every `POLL_SECONDS`. It creates the key when there
is none, and takes it over (compare-and-set on the revision it saw) when the holder has
answered "no responders" on its presence subject for `ABSENT_SECONDS`: a killed holder's
connection is gone the moment its socket closes, so takeover does not wait for the TTL.

A write that timed out may still land (nats-py sends it after a reconnect). So the key
is read back before a renewal is given up for lost, and a ticker that finds its own name
on a key it does not trust deletes it (by revision): a late write never outlives the
verdict of its timeout.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable

import nats.errors
from nats.aio.client import Client
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

from natscron_shared.contract.names import LEADER_KEY
from natscron_shared.contract.presence import PresenceProbe, TickerPresence, presence_subject
from natscron_shared.nats.request_reply import Endpoint

log = logging.getLogger(__name__)

RENEW_FRACTION = 0.25
TRUST_FRACTION = 0.5
RETRY_SECONDS = 0.5
"""After a failed renewal, the next try comes this soon (or sooner, if trust runs out)."""
POLL_SECONDS = 0.25
ABSENT_SECONDS = 0.5
"""How long a holder must answer "no responders" before a standby takes its lease: more
than one probe, so one lost reply proves nothing."""
PROBE_TIMEOUT_SECONDS = 1.0
NATS_ERRORS = (nats.errors.Error, TimeoutError)


class LeaderLease:
    def __init__(
        self,
        bucket: KeyValue,
        nc: Client,
        holder: str,
        ttl_seconds: float,
        on_change: Callable[[bool], None] = lambda _: None,
    ) -> None:
        self._bucket = bucket
        self._nc = nc
        self._holder = holder
        self._ttl = ttl_seconds
        self._on_change = on_change
        self._revision: int | None = None
        self._trusted_until = 0.0
        self._connection = -1
        """The reconnect count when the last successful write started."""
        self._absent_since: tuple[int, float] | None = None
        """(revision, since when) of a holder that answers "no responders"."""
        self.leading = asyncio.Event()
        """Set while this ticker holds the lease (check `is_leader` before acting)."""
        self.standing_by = asyncio.Event()
        """Set while it does not; lets a leader's waits end the moment it loses the lease."""
        self.standing_by.set()

    @property
    def is_leader(self) -> bool:
        return (
            self._revision is not None
            and self._now() < self._trusted_until
            and self._nc.is_connected
            and self._reconnects() == self._connection
        )

    def presence_endpoint(self) -> Endpoint[PresenceProbe]:
        """This ticker's presence subject, served for as long as its service runs: what
        standbys probe while it holds the lease."""
        return Endpoint(
            presence_subject(self._holder),
            PresenceProbe,
            self._present,
            "Whether this ticker is alive, and leads; standbys probe the lease holder",
        )

    async def run(self) -> None:
        """Hold or chase the lease, until cancelled."""
        while True:
            if self._revision is None:
                await self._chase()
                await asyncio.sleep(POLL_SECONDS)
                continue
            renewed = await self._renew()
            pause = self._ttl * RENEW_FRACTION if renewed else RETRY_SECONDS
            await asyncio.sleep(max(0.0, min(pause, self._trusted_until - self._now())))
            if not self.is_leader:
                self._lose("the lease could not be renewed in time")

    async def release(self) -> None:
        """Give the lease up at once, so a standby need not wait for the TTL."""
        if self._revision is None:
            return
        self._lose("stopping", logging.INFO)
        with contextlib.suppress(*NATS_ERRORS):
            await self._delete_if_mine()

    async def _present(self, _: PresenceProbe) -> TickerPresence:
        return TickerPresence(ticker_id=self._holder, leading=self.is_leader)

    async def _chase(self) -> None:
        try:
            entry = await self._bucket.get(LEADER_KEY)
        except KeyNotFoundError:
            entry = None
        except NATS_ERRORS as exc:
            log.warning("could not read the ticker lease: %s", exc)
            return
        try:
            if entry is None or entry.operation in (KV_DEL, KV_PURGE):
                await self._take(None)
            elif entry.value == self._holder.encode():
                # Ours, but not trusted: a renewal that landed after its timeout.
                await self._bucket.delete(LEADER_KEY, last=entry.revision)
            elif entry.revision is not None and await self._holder_gone(entry):
                log.warning("the lease holder %r is gone; taking over", entry.value)
                await self._take(entry.revision)
        except KeyWrongLastSequenceError:
            return
        except NATS_ERRORS as exc:
            log.warning("could not try for the ticker lease: %s", exc)

    async def _holder_gone(self, entry: KeyValue.Entry) -> bool:
        assert entry.revision is not None and entry.value is not None
        try:
            await self._nc.request(
                presence_subject(entry.value.decode(errors="replace")),
                b"{}",
                timeout=PROBE_TIMEOUT_SECONDS,
            )
        except nats.errors.NoRespondersError:
            if self._absent_since is None or self._absent_since[0] != entry.revision:
                self._absent_since = (entry.revision, self._now())
            return self._now() - self._absent_since[1] >= ABSENT_SECONDS
        except NATS_ERRORS:
            pass  # slow, not gone: the TTL decides
        self._absent_since = None
        return False

    async def _take(self, revision: int | None) -> None:
        """Create the key (`revision` None) or replace the one at `revision`."""
        started, connection = self._now(), self._reconnects()
        value = self._holder.encode()
        if revision is None:
            new_revision = await self._bucket.create(LEADER_KEY, value)
        else:
            new_revision = await self._bucket.update(LEADER_KEY, value, last=revision)
        self._hold_from(new_revision, started, connection)
        self._absent_since = None
        log.info("ticker %s holds the lease", self._holder)
        self._announce(True)

    async def _renew(self) -> bool:
        started, connection = self._now(), self._reconnects()
        try:
            for read_back in (False, True):
                assert self._revision is not None
                try:
                    # Not past the trust window: a renewal that comes later is useless.
                    async with asyncio.timeout(max(0.1, self._trusted_until - self._now())):
                        revision = await self._bucket.update(
                            LEADER_KEY, self._holder.encode(), last=self._revision
                        )
                except KeyWrongLastSequenceError:
                    if read_back or not await self._still_mine():
                        self._lose("another ticker holds the lease")
                        return False
                    continue
                self._hold_from(revision, started, connection)
                return True
        except NATS_ERRORS as exc:
            log.warning("could not renew the ticker lease: %s", exc)
        return False

    async def _still_mine(self) -> bool:
        """The key moved on: another ticker took it, or an earlier renewal of ours that
        timed out landed after all, and then the key is ours at its new revision."""
        try:
            entry = await self._bucket.get(LEADER_KEY)
        except KeyNotFoundError:
            return False
        if entry.value != self._holder.encode() or entry.revision is None:
            return False
        self._revision = entry.revision
        return True

    def _hold_from(self, revision: int, started: float, connection: int) -> None:
        self._revision = revision
        self._trusted_until = started + self._ttl * TRUST_FRACTION
        self._connection = connection

    async def _delete_if_mine(self) -> None:
        try:
            entry = await self._bucket.get(LEADER_KEY)
        except KeyNotFoundError:
            return
        if entry.value == self._holder.encode() and entry.revision is not None:
            with contextlib.suppress(KeyWrongLastSequenceError):
                await self._bucket.delete(LEADER_KEY, last=entry.revision)

    def _lose(self, reason: str, level: int = logging.WARNING) -> None:
        if self._revision is None:
            return
        self._revision = None
        log.log(level, "ticker %s lost the lease: %s", self._holder, reason)
        self._announce(False)

    def _announce(self, leading: bool) -> None:
        (self.leading if leading else self.standing_by).set()
        (self.standing_by if leading else self.leading).clear()
        self._on_change(leading)

    def _reconnects(self) -> int:
        return int(self._nc.stats["reconnects"])

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()
