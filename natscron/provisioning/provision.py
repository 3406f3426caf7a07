"""`natscron provision`: bring JetStream to the layout of `jetstream_layout`, idempotently.

Only this step creates or changes streams, buckets and consumers; services and CLI
commands merely check that what they need exists (`jetstream_check`). Running it
again changes nothing and says so. A setting that JetStream cannot change in place
(a stream's retention, a consumer's delivery or ack policy) is reported, not forced:
recreating the object would lose messages, which is an operator's decision. The one
thing deleted is a consumer the layout retires (`RetiredConsumer`: the lanes' consumers
from before runner pools), whose messages stay in the stream for its successor.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, KeyValueConfig, StreamConfig
from nats.js.errors import NotFoundError

from natscron_shared.contract.errors import NatscronError
from natscron_shared.nats.jetstream_layout import (
    KV_DUPLICATE_WINDOW_SECONDS,
    Consumer,
    JetStreamLayout,
    RetiredConsumer,
    kv_stream_name,
)


class ProvisioningError(NatscronError):
    code = "provisioning_error"


class Action(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    DELETED = "deleted"


@dataclass(frozen=True)
class Change:
    kind: str
    name: str
    action: Action
    details: tuple[str, ...] = ()

    def __str__(self) -> str:
        line = f"{self.action.value:<9} {self.kind} {self.name}"
        return f"{line}: {', '.join(self.details)}" if self.details else line


Fields = dict[str, Any]
STREAM_FIXED = ("retention",)
CONSUMER_FIXED = ("deliver_policy", "ack_policy")


def _normal(value: Any) -> Any:
    """Server round trips turn None into 0 or -1, seconds into nanoseconds and back."""
    if value is None or value == -1:
        return None
    if isinstance(value, float):
        return round(value, 3) or None
    if isinstance(value, list):
        return sorted(value)
    return value


def _stream_fields(config: StreamConfig) -> Fields:
    return {
        "subjects": config.subjects,
        "subject_transform": config.subject_transform,
        "retention": config.retention,
        "max_age": config.max_age,
        "max_msgs_per_subject": config.max_msgs_per_subject,
        "max_msg_size": config.max_msg_size,
        "max_bytes": config.max_bytes,
        "duplicate_window": config.duplicate_window,
        "num_replicas": config.num_replicas,
    }


def _bucket_fields(config: KeyValueConfig) -> Fields:
    window = KV_DUPLICATE_WINDOW_SECONDS
    if config.ttl:
        window = min(window, config.ttl)
    return {
        "max_age": config.ttl,
        "max_msgs_per_subject": config.history,
        "max_msg_size": config.max_value_size,
        "max_bytes": config.max_bytes,
        "duplicate_window": window,
        "num_replicas": config.replicas,
    }


def _consumer_fields(config: ConsumerConfig) -> Fields:
    return {
        "filter_subject": config.filter_subject or None,
        "filter_subjects": config.filter_subjects or None,
        "deliver_policy": config.deliver_policy,
        "ack_policy": config.ack_policy,
        "ack_wait": config.ack_wait,
        "max_deliver": config.max_deliver,
        "max_ack_pending": config.max_ack_pending,
    }


def _differences(want: Fields, have: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {
        name: (have.get(name), value)
        for name, value in want.items()
        if _normal(value) != _normal(have.get(name))
    }


def _describe(differences: Mapping[str, tuple[Any, Any]]) -> tuple[str, ...]:
    return tuple(f"{name} {old!r} -> {new!r}" for name, (old, new) in differences.items())


def _refuse_fixed(
    kind: str, name: str, differences: Mapping[str, Any], fixed: tuple[str, ...]
) -> None:
    frozen = [field for field in fixed if field in differences]
    if frozen:
        raise ProvisioningError(
            f"{kind} {name} exists with another {', '.join(frozen)}"
            f" ({'; '.join(_describe({f: differences[f] for f in frozen}))}), which JetStream"
            " cannot change in place; delete it (its messages go with it) and provision again"
        )


async def _stream_config(js: JetStreamContext, name: str) -> StreamConfig | None:
    try:
        return (await js.stream_info(name)).config
    except NotFoundError:
        return None


async def _ensure_stream(js: JetStreamContext, want: StreamConfig) -> Change:
    assert want.name is not None
    have = await _stream_config(js, want.name)
    if have is None:
        await js.add_stream(want)
        return Change("stream", want.name, Action.CREATED)
    differences = _differences(_stream_fields(want), _stream_fields(have))
    if not differences:
        return Change("stream", want.name, Action.UNCHANGED)
    _refuse_fixed("stream", want.name, differences, STREAM_FIXED)
    await js.update_stream(have.evolve(**{f: new for f, (_, new) in differences.items()}))
    return Change("stream", want.name, Action.UPDATED, _describe(differences))


async def _ensure_bucket(js: JetStreamContext, want: KeyValueConfig) -> Change:
    have = await _stream_config(js, kv_stream_name(want.bucket))
    if have is None:
        await js.create_key_value(want)
        return Change("bucket", want.bucket, Action.CREATED)
    differences = _differences(_bucket_fields(want), _stream_fields(have))
    if not differences:
        return Change("bucket", want.bucket, Action.UNCHANGED)
    await js.update_stream(have.evolve(**{f: new for f, (_, new) in differences.items()}))
    return Change("bucket", want.bucket, Action.UPDATED, _describe(differences))


async def _ensure_consumer(js: JetStreamContext, want: Consumer) -> Change:
    try:
        have: ConsumerConfig | None = (await js.consumer_info(want.stream, want.name)).config
    except NotFoundError:
        have = None
    label = f"{want.stream}/{want.name}"
    if have is None:
        await js.add_consumer(want.stream, want.config)
        return Change("consumer", label, Action.CREATED)
    differences = _differences(_consumer_fields(want.config), _consumer_fields(have))
    if not differences:
        return Change("consumer", label, Action.UNCHANGED)
    _refuse_fixed("consumer", label, differences, CONSUMER_FIXED)
    await js.add_consumer(want.stream, want.config)
    return Change("consumer", label, Action.UPDATED, _describe(differences))


async def _retire_consumer(js: JetStreamContext, retired: RetiredConsumer) -> Change | None:
    try:
        await js.delete_consumer(retired.stream, retired.name)
    except NotFoundError:
        return None
    return Change("consumer", f"{retired.stream}/{retired.name}", Action.DELETED, (retired.reason,))


async def provision(
    js: JetStreamContext,
    layout: JetStreamLayout,
    report: Callable[[Change], None] = lambda _: None,
) -> list[Change]:
    """Create or update every stream, then bucket, then consumer; one `Change` each, and one
    for each retired consumer deleted (before the consumers that replace it)."""
    changes: list[Change] = []
    for stream in layout.streams:
        changes.append(await _ensure_stream(js, stream))
        report(changes[-1])
    for bucket in layout.buckets:
        changes.append(await _ensure_bucket(js, bucket))
        report(changes[-1])
    for retired in layout.retired:
        deleted = await _retire_consumer(js, retired)
        if deleted is not None:
            changes.append(deleted)
            report(deleted)
    for consumer in layout.consumers:
        changes.append(await _ensure_consumer(js, consumer))
        report(changes[-1])
    return changes
