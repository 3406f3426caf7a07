"""Backoffs shared by every runner: KV `host_backoff`, one key per host told 429/503.

Every runner follows the bucket with a watch, so checking a host costs no round trip and
a backoff one runner was told reaches the others within milliseconds. Announcing one
reads the key and writes it by revision; a host that answers normally again has its
entry deleted by revision (only once its time has passed), so the next 429 starts the
doubling afresh.
"""

import logging
from datetime import datetime

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue
from pydantic import ValidationError

from natscron_runner.scrapers.polite.backoff import HostBackoff, next_backoff
from natscron_runner.scrapers.polite.hosts import Host
from natscron_shared.nats.connection import to_json
from natscron_shared.nats.kv_watch import KvMirror
from natscron_shared.runtime.clock import Clock

log = logging.getLogger(__name__)

MAX_CONFLICTS = 20


class BackoffBook(KvMirror[HostBackoff]):
    """The backoffs of every host, by token, kept current by a watch (`follow`)."""

    def __init__(self, bucket: KeyValue, clock: Clock, runner_id: str) -> None:
        super().__init__(_parse)
        self.bucket = bucket
        self._clock = clock
        self._runner_id = runner_id

    def until(self, host: Host) -> datetime | None:
        backoff = self.get(host.token)
        return None if backoff is None else backoff.until

    async def announce(
        self, host: Host, status: int, retry_after: str | None, cap_seconds: float
    ) -> datetime:
        backoff: HostBackoff | None = None
        for _ in range(MAX_CONFLICTS):
            previous, revision = await self._read(host.token)
            backoff = next_backoff(
                previous, self._clock.now(), status, retry_after, cap_seconds, self._runner_id
            )
            try:
                await self.bucket.update(host.token, to_json(backoff), last=revision)
            except KeyWrongLastSequenceError:
                continue
            break
        assert backoff is not None
        self.put(host.token, backoff)  # at once: the watch brings it back a moment later
        return backoff.until

    async def clear(self, host: Host) -> None:
        known = self.get(host.token)
        if known is None or known.until > self._clock.now():
            return
        previous, revision = await self._read(host.token)
        if previous is None or previous.until > self._clock.now():
            return
        try:
            await self.bucket.delete(host.token, last=revision)
        except KeyWrongLastSequenceError:
            return  # a new backoff in between: it stands
        self.drop(host.token)

    async def _read(self, key: str) -> tuple[HostBackoff | None, int]:
        try:
            entry = await self.bucket.get(key)
        except KeyNotFoundError as gone:
            return None, 0 if gone.entry is None else gone.entry.revision
        return _parse(key, entry.value or b""), entry.revision or 0


def _parse(key: str, value: bytes) -> HostBackoff | None:
    try:
        return HostBackoff.model_validate_json(value)
    except ValidationError:
        log.warning("ignoring an unreadable KV host_backoff entry %r", key)
        return None
