"""Following KV buckets with watches: when the initial values are all in, a parsed
in-memory mirror of a bucket, and the TTL a bucket must have.

When a KV watch has delivered every value its bucket held as the watch began:

nats-py marks that moment with a `None` entry, but the marker can come first: when the
values reach the client before the watch asks for its consumer's info, the info says
nothing is pending and nothing was received yet (seen about once in 200 watches). So the
end of the initial values is the first entry with nothing pending after it (`delta` 0),
and the marker counts only for a bucket that was empty when the watch began.
"""

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

from natscron_shared.nats.jetstream_check import NotProvisionedError

T = TypeVar("T")


class InitialValues:
    def __init__(self, bucket_was_empty: bool) -> None:
        self._empty = bucket_was_empty

    @classmethod
    async def of(cls, bucket: KeyValue) -> "InitialValues":
        """Call right after starting the watch: a value put in between only means one more
        entry to wait for, never one missed."""
        status = await bucket.status()
        return cls(status.stream_info.state.messages == 0)

    def complete_after(self, entry: KeyValue.Entry | None) -> bool:
        """Whether every initial value has been delivered once `entry` has."""
        if entry is None:
            return self._empty
        return entry.delta == 0

    def complete_with(self, *, caught_up: bool) -> bool:
        """The same for a watch of one's own: whether every initial value has been
        delivered, given whether the last message had nothing pending after it."""
        return self._empty or caught_up


class KvMirror(Generic[T]):
    """A bucket's values, parsed, kept current by a watch (never a poll). A value that
    does not parse (`parse` returns None, having said why) is left out; a delete drops
    the key."""

    def __init__(self, parse: Callable[[str, bytes], T | None]) -> None:
        self._parse = parse
        self._values: dict[str, T] = {}
        self.loaded = asyncio.Event()
        """Set once the watch has delivered every value the bucket held as it began."""

    def __len__(self) -> int:
        return len(self._values)

    def get(self, key: str) -> T | None:
        return self._values.get(key)

    def keys(self) -> list[str]:
        return list(self._values)

    async def follow(self, bucket: KeyValue) -> None:
        """Apply every put and delete until cancelled."""
        watcher = await bucket.watchall()
        initial = await InitialValues.of(bucket)
        try:
            async for entry in watcher:
                if entry is not None and entry.operation in (KV_DEL, KV_PURGE):
                    self.drop(entry.key)
                elif entry is not None:
                    value = self._parse(entry.key, entry.value or b"")
                    if value is not None:
                        self.put(entry.key, value)
                if initial.complete_after(entry):
                    self.loaded.set()
        finally:
            await watcher.stop()  # type: ignore[no-untyped-call]

    def put(self, key: str, value: T) -> None:
        """Apply a value as the watch delivers it (the bucket is not written): the one way
        values enter a mirror, whoever feeds it; subclasses act on it here."""
        self._values[key] = value

    def drop(self, key: str) -> None:
        """Apply a delete as the watch delivers it (the bucket is not written)."""
        self._values.pop(key, None)


async def bucket_ttl(bucket: KeyValue, name: str, without_it: str) -> float:
    """The TTL `natscron provision` gave a bucket whose keys must expire; `without_it`
    says what would go wrong without one."""
    ttl = (await bucket.status()).ttl
    if not ttl:
        raise NotProvisionedError(
            f"KV {name} has no TTL, so {without_it}; run `natscron provision`"
        )
    return float(ttl)


async def current_values(bucket: KeyValue) -> dict[str, bytes]:
    """Every live key's value now (`KeyValue.keys()` has the same early-marker race)."""
    values: dict[str, bytes] = {}
    watcher = await bucket.watchall()
    initial = await InitialValues.of(bucket)
    try:
        async for entry in watcher:
            if entry is not None and entry.operation in (KV_DEL, KV_PURGE):
                values.pop(entry.key, None)
            elif entry is not None:
                values[entry.key] = entry.value or b""
            if initial.complete_after(entry):
                return values
    finally:
        await watcher.stop()  # type: ignore[no-untyped-call]
    return values
