"""Idempotent creation of the streams, KV buckets and durable consumers of the contract.

Every service runs this at start-up; running it again, or from several services at
once, changes nothing. A bucket or stream whose settings differ is updated in place.
"""

import logging

from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    KeyValueConfig,
    RetentionPolicy,
    StreamConfig,
)
from nats.js.errors import BadRequestError
from nats.js.kv import KeyValue

from natscron_shared import names
from natscron_shared.enums import Priority
from natscron_shared.messages import MAX_MESSAGE_BYTES

log = logging.getLogger(__name__)

STREAM_ALREADY_EXISTS = 10058
DUPLICATE_WINDOW_SECONDS = 15 * 60.0
HISTORY_MAX_AGE_SECONDS = 14 * 24 * 3600.0
RUNNER_ACK_WAIT_SECONDS = 60.0
RECORDER_ACK_WAIT_SECONDS = 30.0


def stream_configs() -> list[StreamConfig]:
    return [
        StreamConfig(
            name=names.STREAM_JOBS,
            subjects=[f"{names.JOBS_RUN_PREFIX}.{p.value}" for p in Priority],
            retention=RetentionPolicy.WORK_QUEUE,
            duplicate_window=DUPLICATE_WINDOW_SECONDS,
            max_msg_size=MAX_MESSAGE_BYTES,
        ),
        StreamConfig(
            name=names.STREAM_EVENTS,
            subjects=[f"{names.JOBS_EVENTS_PREFIX}.>", f"{names.SCHEDULED_JOBS_EVENTS_PREFIX}.>"],
            retention=RetentionPolicy.LIMITS,
            duplicate_window=DUPLICATE_WINDOW_SECONDS,
            max_age=HISTORY_MAX_AGE_SECONDS,
            max_msg_size=MAX_MESSAGE_BYTES,
        ),
        StreamConfig(
            name=names.STREAM_ITEMS,
            subjects=[f"{names.ITEMS_PREFIX}.>"],
            retention=RetentionPolicy.LIMITS,
            duplicate_window=DUPLICATE_WINDOW_SECONDS,
            max_age=HISTORY_MAX_AGE_SECONDS,
            max_msg_size=MAX_MESSAGE_BYTES,
        ),
    ]


def consumer_configs() -> dict[str, list[ConsumerConfig]]:
    runner = [
        ConsumerConfig(
            durable_name=names.runner_consumer(p),
            filter_subject=names.run_subject(p),
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=RUNNER_ACK_WAIT_SECONDS,
            max_deliver=-1,
            max_ack_pending=10_000,
        )
        for p in Priority
    ]
    recorder = [
        ConsumerConfig(
            durable_name=durable,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=RECORDER_ACK_WAIT_SECONDS,
            max_deliver=-1,
            max_ack_pending=10_000,
        )
        for durable in (names.RECORDER_EVENTS_CONSUMER, names.RECORDER_ITEMS_CONSUMER)
    ]
    return {
        names.STREAM_JOBS: runner,
        names.STREAM_EVENTS: recorder[:1],
        names.STREAM_ITEMS: recorder[1:],
    }


def bucket_configs(lease_ttl_seconds: float) -> list[KeyValueConfig]:
    return [
        KeyValueConfig(bucket=names.KV_SCHEDULED_JOBS, history=5, max_value_size=MAX_MESSAGE_BYTES),
        KeyValueConfig(bucket=names.KV_TICKER_LEADER, history=1, ttl=lease_ttl_seconds),
        KeyValueConfig(bucket=names.KV_TICKER_STATE, history=1),
        KeyValueConfig(bucket=names.KV_RUNNING, history=1),
    ]


async def ensure_stream(js: JetStreamContext, config: StreamConfig) -> None:
    try:
        await js.add_stream(config)
    except BadRequestError as exc:
        if exc.err_code != STREAM_ALREADY_EXISTS:
            raise
        log.info("stream %s exists with other settings; updating it", config.name)
        await js.update_stream(config)


async def ensure_bucket(js: JetStreamContext, config: KeyValueConfig) -> KeyValue:
    try:
        return await js.create_key_value(config)
    except BadRequestError as exc:
        if exc.err_code != STREAM_ALREADY_EXISTS:
            raise
        log.info("bucket %s exists with other settings; updating it", config.bucket)
        info = await js.stream_info(f"KV_{config.bucket}")
        info.config.max_age = config.ttl
        info.config.max_msgs_per_subject = config.history
        if config.ttl:
            # The server refuses a duplicate window longer than the age limit.
            window = info.config.duplicate_window or config.ttl
            info.config.duplicate_window = min(window, config.ttl)
        await js.update_stream(info.config)
        return await js.key_value(config.bucket)


async def provision(js: JetStreamContext, lease_ttl_seconds: float) -> None:
    """Create (or bring up to date) everything natscron needs in JetStream."""
    for stream in stream_configs():
        await ensure_stream(js, stream)
    for stream_name, consumers in consumer_configs().items():
        for consumer in consumers:
            await js.add_consumer(stream_name, consumer)
    for bucket in bucket_configs(lease_ttl_seconds):
        await ensure_bucket(js, bucket)
