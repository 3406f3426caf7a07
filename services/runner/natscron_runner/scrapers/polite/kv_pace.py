"""A host's request rate shared by every runner: KV `host_pace`, one key per host.

The value is the earliest moment the host's next request may start (GCRA: a virtual
schedule, no bucket of tokens to refill). Taking a turn reads it, then writes it one
interval on, expecting the revision read (compare-and-set); on a conflict another runner
took that turn, so it reads again. The start is reserved before anyone waits for it, so
waiting requests line up an interval apart whichever runner they are on. Two round trips
per request, only for hosts with a rate limit.

Runners compare times from their own clocks here: they must agree (NTP) to within a small
part of the interval, or the host sees requests closer together by the difference.
"""

from datetime import datetime, timedelta

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue
from pydantic import AwareDatetime, BaseModel, ValidationError

from natscron_runner.scrapers.polite.hosts import Host
from natscron_shared.nats.connection import to_json
from natscron_shared.runtime.clock import Clock

MAX_CONFLICTS = 100
"""Each conflict is another runner's turn taken: this many in a row means something else."""


class HostPace(BaseModel):
    next_start: AwareDatetime


class PaceConflictError(Exception):
    """Too many runners kept taking the turn first; the request is retried later."""


class KvPace:
    def __init__(self, bucket: KeyValue, clock: Clock) -> None:
        self._bucket = bucket
        self._clock = clock

    async def turn(self, host: Host, interval_seconds: float) -> datetime:
        for _ in range(MAX_CONFLICTS):
            free_at, revision = await self._read(host.token)
            now = self._clock.now()
            start = now if free_at is None else max(now, free_at)
            value = HostPace(next_start=start + timedelta(seconds=interval_seconds))
            try:
                await self._bucket.update(host.token, to_json(value), last=revision)
            except KeyWrongLastSequenceError:
                continue
            return start
        raise PaceConflictError(f"could not reserve a turn at {host} in {MAX_CONFLICTS} tries")

    async def _read(self, key: str) -> tuple[datetime | None, int]:
        try:
            entry = await self._bucket.get(key)
        except KeyNotFoundError as gone:
            return None, 0 if gone.entry is None else gone.entry.revision
        revision = entry.revision or 0
        try:
            return HostPace.model_validate_json(entry.value or b"").next_start, revision
        except ValidationError:
            return None, revision  # unreadable: overwrite it
