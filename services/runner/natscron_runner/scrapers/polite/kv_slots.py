"""Request slots shared by every runner: KV `host_slots`, one key per slot.

A host with a limit of N requests in flight has the keys `<host token>.0` .. `.N-1`. A
request holds one: it writes the key expecting the revision it last saw free (JetStream
refuses the write if anyone wrote since: compare-and-set on the subject's last sequence),
and deletes it, by revision, when the answer is in. A slot held longer than a third of
the bucket's TTL is renewed; the TTL frees the slots of a runner that died.

Round trips: a slot this runner freed last is taken with one write (its delete's revision
is remembered); a slot another runner freed costs a failed write, a read and a write.
Giving it back is one write. Waiting for a free slot polls, 10 ms doubling to 200 ms.

Within a runner a semaphore of N comes first, so a runner never asks KV for more slots
than the limit, and its own waiting requests do not poll KV all at once.
"""

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator

import nats.errors
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KV_DEL, KV_OP, KeyValue
from pydantic import AwareDatetime, BaseModel

from natscron_runner.scrapers.polite.hosts import Host
from natscron_shared.contract import names
from natscron_shared.nats.connection import to_json
from natscron_shared.runtime.clock import Clock

log = logging.getLogger(__name__)

EXPECTED_LAST_SUBJECT_SEQUENCE = "Nats-Expected-Last-Subject-Sequence"
FIRST_POLL_SECONDS = 0.01
MAX_POLL_SECONDS = 0.2
RENEWALS_PER_TTL = 3


class SlotHolder(BaseModel):
    """The value of a held slot: who holds it, for whoever looks."""

    runner_id: str
    since: AwareDatetime


class KvSlots:
    def __init__(
        self,
        js: JetStreamContext,
        bucket: KeyValue,
        ttl_seconds: float,
        runner_id: str,
        clock: Clock,
    ) -> None:
        self._js = js
        self._bucket = bucket
        self._ttl = ttl_seconds
        self._runner_id = runner_id
        self._clock = clock
        self._local: dict[Host, asyncio.Semaphore] = {}
        self._free_at: dict[str, int] = {}
        """Slot key -> the revision this runner left it free at (its delete marker)."""

    @contextlib.asynccontextmanager
    async def slot(self, host: Host, limit: int) -> AsyncIterator[None]:
        async with self._local.setdefault(host, asyncio.Semaphore(limit)):
            key, revision = await self._take(host, limit)
            holding = _Held(revision)
            renewing = asyncio.create_task(self._renew(key, holding), name="polite-slot-renewal")
            try:
                yield
            finally:
                renewing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await renewing
                await self._give_back(key, holding.revision)

    async def _take(self, host: Host, limit: int) -> tuple[str, int]:
        poll = FIRST_POLL_SECONDS
        first = random.randrange(limit)
        while True:
            for n in range(limit):
                key = f"{host.token}.{(first + n) % limit}"
                revision = await self._try(key)
                if revision is not None:
                    return key, revision
            await asyncio.sleep(poll * random.uniform(0.5, 1.0))
            poll = min(poll * 2, MAX_POLL_SECONDS)

    async def _try(self, key: str) -> int | None:
        """Take `key` if it is free: its revision, or None if someone holds it."""
        value = self._value()
        try:
            return await self._bucket.update(key, value, last=self._free_at.get(key, 0))
        except KeyWrongLastSequenceError:
            pass
        try:
            await self._bucket.get(key)
        except KeyNotFoundError as gone:  # deleted (its marker's revision) or expired (0)
            free_at = 0 if gone.entry is None else gone.entry.revision
        else:
            return None
        try:
            return await self._bucket.update(key, value, last=free_at)
        except KeyWrongLastSequenceError:
            return None  # another runner took it in between

    async def _renew(self, key: str, holding: "_Held") -> None:
        while True:
            await asyncio.sleep(self._ttl / RENEWALS_PER_TTL)
            try:
                holding.revision = await self._bucket.update(
                    key, self._value(), last=holding.revision
                )
            except KeyWrongLastSequenceError:
                log.warning("request slot %s lapsed (renewals late) and was taken", key)
                return
            except (nats.errors.Error, TimeoutError):
                log.warning("renewing request slot %s failed; trying again", key)

    async def _give_back(self, key: str, revision: int) -> None:
        """Delete the slot by revision, remembering the marker's revision to take it again
        with one write. A slot that lapsed and was taken stays its holder's."""
        subject = f"$KV.{names.KV_HOST_SLOTS}.{key}"
        headers = {KV_OP: KV_DEL, EXPECTED_LAST_SUBJECT_SEQUENCE: str(revision)}
        try:
            ack = await self._js.publish(subject, b"", headers=headers)
        except (nats.errors.Error, TimeoutError) as exc:
            self._free_at.pop(key, None)
            log.warning(
                "could not give back request slot %s (%s); it lapses with the TTL", key, exc
            )
        else:
            self._free_at[key] = ack.seq

    def _value(self) -> bytes:
        return to_json(SlotHolder(runner_id=self._runner_id, since=self._clock.now()))


class _Held:
    def __init__(self, revision: int) -> None:
        self.revision = revision
