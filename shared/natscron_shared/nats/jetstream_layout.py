"""What natscron needs in JetStream: every stream, KV bucket and durable consumer of the
contract, with its settings, in one place. `provision` creates it; services only check it."""

from collections.abc import Sequence
from dataclasses import dataclass

from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    KeyValueConfig,
    RetentionPolicy,
    StreamConfig,
    SubjectTransform,
)

from natscron_shared.contract import names
from natscron_shared.contract.enums import Priority
from natscron_shared.contract.messages import MAX_MESSAGE_BYTES
from natscron_shared.contract.pools import DEFAULT_POOL, with_default

DUPLICATE_WINDOW_SECONDS = 15 * 60.0
HISTORY_MAX_AGE_SECONDS = 14 * 24 * 3600.0
RUNNER_ACK_WAIT_SECONDS = 10.0
"""The runners' JOBS consumers, by default (`NATSCRON_RUNNER_ACK_WAIT_SECONDS`): a job
whose runner died runs again elsewhere after it. A live runner sends a progress ack every
third of it (runners read it from their consumers), so it need not cover a job's length."""
CLAIM_TTL_SECONDS = 10.0
"""KV `running`, by default (`NATSCRON_CLAIM_TTL_SECONDS`): a claim its runner stops
renewing (every third of this) lapses after it. Runners read it from the bucket. As the ack
wait: a dead runner's `forbid`/`replace` job, delivered again after the ack wait, finds its
schedule claim lapsed about then instead of waiting longer for it."""
CANCEL_TTL_SECONDS = HISTORY_MAX_AGE_SECONDS
"""KV `cancels`: a cancelled job still queued is refused for as long as its events are kept."""
CATALOGUE_TTL_SECONDS = 30.0
"""KV `scrapers`: a scraper no live runner advertises (every third of this) disappears."""
HOST_PACE_TTL_SECONDS = 3600.0
"""KV `host_pace` and `host_backoff`: a host nobody fetched for this long is forgotten
(a reservation or a backoff is never that far ahead: both are capped well below)."""
CHECKPOINT_TTL_SECONDS = 24 * 3600.0
"""KV `checkpoints`: a scrape's state outlives its attempt by this much at most (each save
renews it); the runner deletes it when the job ends."""
SCREENSHOT_MAX_BYTES = 256 * 1024
"""KV `screenshots`: the largest JPEG one failed attempt may store (the bucket refuses more)."""
SCREENSHOTS_MAX_BYTES = 512 * 1024 * 1024
"""KV `screenshots`, all of them together: once full, new screenshots are refused (and
counted by the runner) until old ones expire."""
RECORDER_ACK_WAIT_SECONDS = 30.0
CHAINS_ACK_WAIT_SECONDS = 10.0
"""A parent finish the leader took and did not ack (it died) goes to the next leader this
long after: handling one takes milliseconds. The consumer hands out one at a time, so the
next finishes wait behind it, in order."""
WEBHOOKS_ACK_WAIT_SECONDS = 30.0
MAX_ACK_PENDING = 10_000
KV_DUPLICATE_WINDOW_SECONDS = 120.0
"""What nats-py gives a KV bucket, or the bucket's TTL if that is shorter."""
RETRIES_AS_RUNS = SubjectTransform(
    src=f"{names.JOBS_RETRY_PREFIX}.>", dest=f"{names.JOBS_RUN_PREFIX}.>"
)
"""JOBS stores a runner's retry (`jobs.retry.<pool>.<lane>`) as a run request of its pool and
lane: the runners' consumers see one subject per pool and lane, and only the ticker may
publish on it. Run requests do not match `src`, so the stream leaves their subjects as they
are. A runner from before pools retries on `jobs.retry.<lane>`, stored as `jobs.run.<lane>`."""
ANY_POOL = "*"


@dataclass(frozen=True)
class Consumer:
    stream: str
    config: ConsumerConfig

    @property
    def name(self) -> str:
        assert self.config.durable_name is not None
        return self.config.durable_name


@dataclass(frozen=True)
class RetiredConsumer:
    """A consumer of an older layout that `provision` deletes, and why."""

    stream: str
    name: str
    reason: str


RETIRED_CONSUMERS = tuple(
    RetiredConsumer(
        names.STREAM_JOBS,
        names.legacy_runner_consumer(p),
        f"replaced by {names.runner_consumer(DEFAULT_POOL, p)}, which reads its subject",
    )
    for p in Priority
)
"""The lanes' consumers from before pools: on a work-queue stream two consumers may not
share a subject, so the default pool's cannot be created while they exist. Deleting one
loses no message (a work queue keeps each until it is acked): its unacked ones go to the
default pool's consumer at once."""


@dataclass(frozen=True)
class JetStreamLayout:
    streams: tuple[StreamConfig, ...]
    buckets: tuple[KeyValueConfig, ...]
    consumers: tuple[Consumer, ...]
    retired: tuple[RetiredConsumer, ...] = ()


def kv_stream_name(bucket: str) -> str:
    return f"KV_{bucket}"


def _stream(
    name: str,
    subjects: list[str],
    retention: RetentionPolicy,
    replicas: int,
    max_age: float | None = None,
    subject_transform: SubjectTransform | None = None,
) -> StreamConfig:
    return StreamConfig(
        name=name,
        subjects=subjects,
        subject_transform=subject_transform,
        retention=retention,
        max_age=max_age,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
        max_msg_size=MAX_MESSAGE_BYTES,
        num_replicas=replicas,
    )


def _streams(replicas: int) -> tuple[StreamConfig, ...]:
    history = RetentionPolicy.LIMITS
    return (
        _stream(
            names.STREAM_JOBS,
            [
                *(names.run_subject(ANY_POOL, p) for p in Priority),
                *(names.retry_subject(ANY_POOL, p) for p in Priority),
                *(names.legacy_run_subject(p) for p in Priority),
                *(names.legacy_retry_subject(p) for p in Priority),
            ],
            RetentionPolicy.WORK_QUEUE,
            replicas,
            subject_transform=RETRIES_AS_RUNS,
        ),
        _stream(
            names.STREAM_EVENTS,
            [f"{names.JOBS_EVENTS_PREFIX}.>", f"{names.SCHEDULED_JOBS_EVENTS_PREFIX}.>"],
            history,
            replicas,
            HISTORY_MAX_AGE_SECONDS,
        ),
        _stream(
            names.STREAM_ITEMS,
            [f"{names.ITEMS_PREFIX}.>"],
            history,
            replicas,
            HISTORY_MAX_AGE_SECONDS,
        ),
        _stream(
            names.STREAM_DECISIONS,
            [f"{names.DECISIONS_PREFIX}.>"],
            history,
            replicas,
            HISTORY_MAX_AGE_SECONDS,
        ),
        _stream(
            names.STREAM_CHAINS,
            [f"{names.CHAINS_FINISHED_PREFIX}.>"],
            RetentionPolicy.WORK_QUEUE,
            replicas,
        ),
    )


def _buckets(
    replicas: int, lease_ttl_seconds: float, claim_ttl_seconds: float
) -> tuple[KeyValueConfig, ...]:
    return (
        KeyValueConfig(
            bucket=names.KV_SCHEDULED_JOBS,
            history=5,
            max_value_size=MAX_MESSAGE_BYTES,
            replicas=replicas,
        ),
        KeyValueConfig(
            bucket=names.KV_TICKER_LEADER, history=1, ttl=lease_ttl_seconds, replicas=replicas
        ),
        KeyValueConfig(bucket=names.KV_TICKER_STATE, history=1, replicas=replicas),
        KeyValueConfig(
            bucket=names.KV_RUNNING, history=1, ttl=claim_ttl_seconds, replicas=replicas
        ),
        KeyValueConfig(
            bucket=names.KV_CANCELS, history=1, ttl=CANCEL_TTL_SECONDS, replicas=replicas
        ),
        KeyValueConfig(bucket=names.KV_LAST_RUNS, history=1, replicas=replicas),
        KeyValueConfig(bucket=names.KV_CHAIN_STATE, history=1, replicas=replicas),
        KeyValueConfig(
            bucket=names.KV_HOST_SLOTS, history=1, ttl=claim_ttl_seconds, replicas=replicas
        ),
        KeyValueConfig(
            bucket=names.KV_HOST_PACE, history=1, ttl=HOST_PACE_TTL_SECONDS, replicas=replicas
        ),
        KeyValueConfig(
            bucket=names.KV_HOST_BACKOFF, history=1, ttl=HOST_PACE_TTL_SECONDS, replicas=replicas
        ),
        KeyValueConfig(
            bucket=names.KV_CHECKPOINTS,
            history=1,
            ttl=CHECKPOINT_TTL_SECONDS,
            max_value_size=MAX_MESSAGE_BYTES,
            replicas=replicas,
        ),
        KeyValueConfig(
            bucket=names.KV_SCRAPERS,
            history=1,
            ttl=CATALOGUE_TTL_SECONDS,
            max_value_size=MAX_MESSAGE_BYTES,
            replicas=replicas,
        ),
        KeyValueConfig(
            bucket=names.KV_SCREENSHOTS,
            history=1,
            ttl=HISTORY_MAX_AGE_SECONDS,
            max_value_size=SCREENSHOT_MAX_BYTES,
            max_bytes=SCREENSHOTS_MAX_BYTES,
            replicas=replicas,
        ),
    )


def _runner_consumer(pool: str, priority: Priority, ack_wait_seconds: float) -> Consumer:
    """One lane of one pool. The default pool's also reads the lane's subject from before
    pools (`jobs.run.<lane>`), so what was queued there runs after an upgrade."""
    subjects = [names.run_subject(pool, priority)]
    if pool == DEFAULT_POOL:
        subjects.append(names.legacy_run_subject(priority))
    return Consumer(
        names.STREAM_JOBS,
        ConsumerConfig(
            durable_name=names.runner_consumer(pool, priority),
            filter_subject=None if len(subjects) > 1 else subjects[0],
            filter_subjects=subjects if len(subjects) > 1 else None,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=ack_wait_seconds,
            max_deliver=-1,
            max_ack_pending=MAX_ACK_PENDING,
        ),
    )


def _consumers(pools: tuple[str, ...], runner_ack_wait_seconds: float) -> tuple[Consumer, ...]:
    runners = tuple(
        _runner_consumer(pool, p, runner_ack_wait_seconds) for pool in pools for p in Priority
    )
    recorders = tuple(
        Consumer(
            stream,
            ConsumerConfig(
                durable_name=durable,
                deliver_policy=DeliverPolicy.ALL,
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=RECORDER_ACK_WAIT_SECONDS,
                max_deliver=-1,
                max_ack_pending=MAX_ACK_PENDING,
            ),
        )
        for stream, durable in (
            (names.STREAM_EVENTS, names.RECORDER_EVENTS_CONSUMER),
            (names.STREAM_ITEMS, names.RECORDER_ITEMS_CONSUMER),
            (names.STREAM_DECISIONS, names.RECORDER_DECISIONS_CONSUMER),
        )
    )
    webhooks = Consumer(
        names.STREAM_EVENTS,
        ConsumerConfig(
            durable_name=names.WEBHOOKS_CONSUMER,
            filter_subject=f"{names.JOBS_EVENTS_PREFIX}.>",
            # New events only: a consumer created (or re-created) on a stream holding
            # 14 days of events must not call every webhook of those days again.
            deliver_policy=DeliverPolicy.NEW,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=WEBHOOKS_ACK_WAIT_SECONDS,
            max_deliver=-1,
            max_ack_pending=MAX_ACK_PENDING,
        ),
    )
    chains = Consumer(
        names.STREAM_CHAINS,
        ConsumerConfig(
            durable_name=names.CHAINS_CONSUMER,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=CHAINS_ACK_WAIT_SECONDS,
            max_deliver=-1,
            # One at a time, in order, across failovers: a finish a dead leader held is
            # handed to the next before any later one.
            max_ack_pending=1,
        ),
    )
    return (*runners, *recorders, webhooks, chains)


def jetstream_layout(
    replicas: int,
    lease_ttl_seconds: float,
    claim_ttl_seconds: float = CLAIM_TTL_SECONDS,
    pools: Sequence[str] = (),
    runner_ack_wait_seconds: float = RUNNER_ACK_WAIT_SECONDS,
) -> JetStreamLayout:
    """Everything natscron needs; `replicas` copies of each stream and bucket. The two
    TTLs are those of the ticker lease and of the runners' claims (KV `running`, and the
    request slots of KV `host_slots`); `pools` the runner pools besides the default one,
    each with its two lanes' consumers, whose ack wait is `runner_ack_wait_seconds`."""
    return JetStreamLayout(
        streams=_streams(replicas),
        buckets=_buckets(replicas, lease_ttl_seconds, claim_ttl_seconds),
        consumers=_consumers(with_default(pools), runner_ack_wait_seconds),
        retired=RETIRED_CONSUMERS,
    )
