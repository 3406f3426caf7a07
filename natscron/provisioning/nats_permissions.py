"""Least privilege on NATS: one user per natscron process, allowed exactly the subjects its
code uses, rendered as the nats-server `authorization` block that compose
(`deploy/nats/auth.conf`) and Kubernetes (`k8s/base/nats/auth.conf`) include. The
committed files are this module's output (`python -m natscron.provisioning.nats_permissions`);
a test keeps them equal.

What the rules enforce:

- only the ticker publishes run requests (`jobs.run.<pool>.<lane>`); the runner, which
  runs them, may not. A failed attempt's retry (`max_retries` > 0) goes to
  `jobs.retry.<pool>.<lane>`, which the JOBS stream stores as `jobs.run.<pool>.<lane>`
  (`jetstream_layout.RETRIES_AS_RUNS`): the runner may publish there, and on no
  `jobs.run.>` subject;
- the ticker and the runner publish decision records (`decisions.<scheduled_job_id>`): why a
  slot did not fire as scheduled;
- only the recorder consumes EVENTS, ITEMS and DECISIONS (its durables and `webhooks`), only
  the runner consumes JOBS. Every pool's runners are the one user `runner`, allowed every
  JOBS consumer (there are only the pools' lanes): the pools are a deployment's choice, this
  file is not, and a pool routes work, it is no boundary of trust;
- only the runners use the polite-fetching buckets (`host_slots`, `host_pace`,
  `host_backoff`) and the scrapes' checkpoints (`checkpoints`), and read ITEMS back (the
  last batch a resumed scrape continues after);
- only the runner writes KV `screenshots` (failed browser scrapes), which the API serves;
- only the runner writes KV `last_runs` (the ends of the runs of intervals `from:
  last_run`); the ticker, which fires them by it, and the API, which previews them, read it;
- only the runner publishes the ends of chain parents' runs (`chains.finished.>`, stream
  CHAINS), only the ticker consumes them (`ticker-chains`) and writes KV `chain_state`;
- the API writes schedules (KV `scheduled_jobs`) and asks the tickers and runners
  (`jobs.trigger`, `jobs.backfill`, `jobs.cancel`, `natscron.ticker.status`), follows runs'
  status changes on EVENTS with an ordered consumer of its own, but never
  reads the ticker lease (KV `ticker_leader`: only its bucket's config) nor publishes
  anything that runs; the CLI writes schedules and calls the API (`natscron.api.>`);
- `provision` administers the JetStream layout and touches no message.

Passwords come from the server's environment (`$NATS_<USER>_PASSWORD`), never from here.
Each user reads only its own replies, under `_INBOX.<user>.>` (the inbox prefix its
processes use, `natscron_shared.nats.auth.inbox_prefix`): with `_INBOX.>` any user could
read the others' answers, the lease's value and the runners' jobs among them.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from natscron_shared.contract import names
from natscron_shared.contract.enums import Priority
from natscron_shared.nats.auth import DEFAULT_INBOX_PREFIX
from natscron_shared.nats.jetstream_layout import RETIRED_CONSUMERS, kv_stream_name

JS_API = "$JS.API"
MICRO_DISCOVERY = "$SRV.>"


@dataclass(frozen=True)
class Grants:
    """Subjects one user may publish to and subscribe to; `allow_responses` lets it answer
    the requests it receives (their reply subjects) without a grant on `_INBOX.>`."""

    publish: tuple[str, ...] = ()
    subscribe: tuple[str, ...] = ()
    allow_responses: bool = False

    def __add__(self, other: "Grants") -> "Grants":
        return Grants(
            _unique((*self.publish, *other.publish)),
            _unique((*self.subscribe, *other.subscribe)),
            self.allow_responses or other.allow_responses,
        )


@dataclass(frozen=True)
class NatsUser:
    name: str
    grants: Grants

    @property
    def permissions(self) -> Grants:
        """Its grants and its own replies: every request's answer (JetStream's publish
        acks and API replies, KV watches' deliveries) comes back under its inbox prefix."""
        return self.grants + Grants(subscribe=(f"{DEFAULT_INBOX_PREFIX}.{self.name}.>",))

    @property
    def password_variable(self) -> str:
        """The server's environment variable holding this user's password."""
        return f"NATS_{self.name.upper()}_PASSWORD"


def _unique(subjects: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(subjects))


def _total(*grants: Grants) -> Grants:
    total = Grants()
    for grant in grants:
        total = total + grant
    return total


def publish(*subjects: str) -> Grants:
    return Grants(publish=subjects)


def serve(*subjects: str) -> Grants:
    """Answer requests on `subjects` (in a queue group or not)."""
    return Grants(subscribe=subjects, allow_responses=True)


def stream_info(*streams: str) -> Grants:
    """Look a stream up (the services' provisioning checks, TTLs, the KV watchdog)."""
    return publish(*(f"{JS_API}.STREAM.INFO.{stream}" for stream in streams))


def read_stream_messages(stream: str) -> Grants:
    """Get one message of `stream` by subject (the last event of a job)."""
    return publish(f"{JS_API}.STREAM.MSG.GET.{stream}", f"{JS_API}.DIRECT.GET.{stream}.>")


def consumer_info(stream: str, durable: str) -> Grants:
    return publish(f"{JS_API}.CONSUMER.INFO.{stream}.{durable}")


def list_consumers(stream: str) -> Grants:
    """The consumers of `stream` with their state (the lag of every runner pool's lanes)."""
    return publish(f"{JS_API}.CONSUMER.LIST.{stream}")


def consume(stream: str, durable: str) -> Grants:
    """Pull from a durable consumer and settle its messages (ack, nak, progress, term)."""
    return consumer_info(stream, durable) + publish(
        f"{JS_API}.CONSUMER.MSG.NEXT.{stream}.{durable}", f"$JS.ACK.{stream}.{durable}.>"
    )


def ordered_consumer(stream: str) -> Grants:
    """Follow a stream with an ordered push consumer (ephemeral, created again from the
    next sequence after a gap), delivered to an inbox, with flow control."""
    return publish(
        f"{JS_API}.CONSUMER.CREATE.{stream}",
        f"{JS_API}.CONSUMER.CREATE.{stream}.>",
        f"{JS_API}.CONSUMER.INFO.{stream}.*",
        f"{JS_API}.CONSUMER.DELETE.{stream}.>",
        f"$JS.FC.{stream}.>",
    )


def kv_read(bucket: str) -> Grants:
    """Get keys and watch the bucket: a watch is an ordered consumer on its stream."""
    stream = kv_stream_name(bucket)
    return stream_info(stream) + read_stream_messages(stream) + ordered_consumer(stream)


def kv_write(bucket: str) -> Grants:
    """Put, create, update and delete keys: publications on `$KV.<bucket>.<key>`."""
    return publish(f"$KV.{bucket}.>")


def kv_read_write(bucket: str) -> Grants:
    return kv_read(bucket) + kv_write(bucket)


ANY_POOL = "*"
RUN_LANES = tuple(names.run_subject(ANY_POOL, p) for p in Priority)
RETRY_LANES = tuple(names.retry_subject(ANY_POOL, p) for p in Priority)
RUNNER_CONSUMERS = "*"
"""Every consumer of JOBS: the lanes of every pool (a subject wildcard is a whole token)."""
JOB_EVENTS = f"{names.JOBS_EVENTS_PREFIX}.>"
SCHEDULE_EVENTS = f"{names.SCHEDULED_JOBS_EVENTS_PREFIX}.>"
API_REQUESTS = f"{names.API_PREFIX}.>"
DECISIONS = f"{names.DECISIONS_PREFIX}.>"

CHAINS_FINISHED = f"{names.CHAINS_FINISHED_PREFIX}.>"

TICKER = _total(
    stream_info(
        names.STREAM_JOBS, names.STREAM_EVENTS, names.STREAM_DECISIONS, names.STREAM_CHAINS
    ),
    read_stream_messages(names.STREAM_EVENTS),
    consume(names.STREAM_CHAINS, names.CHAINS_CONSUMER),
    kv_read(names.KV_SCHEDULED_JOBS),
    kv_read_write(names.KV_TICKER_LEADER),
    kv_read_write(names.KV_TICKER_STATE),
    kv_read_write(names.KV_CHAIN_STATE),
    kv_read(names.KV_SCRAPERS),
    kv_read(names.KV_LAST_RUNS),
    publish(*RUN_LANES, JOB_EVENTS, SCHEDULE_EVENTS, DECISIONS),
    serve(
        names.JOBS_TRIGGER,
        names.JOBS_BACKFILL,
        names.TICKER_STATUS,
        f"{names.TICKER_PRESENCE_PREFIX}.*",
        MICRO_DISCOVERY,
    ),
    publish(f"{names.TICKER_PRESENCE_PREFIX}.*"),
)

RUNNER = _total(
    stream_info(
        names.STREAM_JOBS,
        names.STREAM_EVENTS,
        names.STREAM_ITEMS,
        names.STREAM_DECISIONS,
        names.STREAM_CHAINS,
    ),
    consume(names.STREAM_JOBS, RUNNER_CONSUMERS),
    read_stream_messages(names.STREAM_EVENTS),
    read_stream_messages(names.STREAM_ITEMS),
    kv_read_write(names.KV_RUNNING),
    kv_read_write(names.KV_CANCELS),
    kv_read_write(names.KV_LAST_RUNS),
    kv_read_write(names.KV_HOST_SLOTS),
    kv_read_write(names.KV_HOST_PACE),
    kv_read_write(names.KV_HOST_BACKOFF),
    kv_read_write(names.KV_CHECKPOINTS),
    stream_info(kv_stream_name(names.KV_SCRAPERS)),
    kv_write(names.KV_SCRAPERS),
    stream_info(kv_stream_name(names.KV_SCREENSHOTS)),
    kv_write(names.KV_SCREENSHOTS),
    publish(*RETRY_LANES, JOB_EVENTS, f"{names.ITEMS_PREFIX}.>", DECISIONS, CHAINS_FINISHED),
    serve(names.JOBS_CANCEL, MICRO_DISCOVERY),
)

RECORDER = _total(
    stream_info(names.STREAM_EVENTS, names.STREAM_ITEMS, names.STREAM_DECISIONS),
    consume(names.STREAM_EVENTS, names.RECORDER_EVENTS_CONSUMER),
    consume(names.STREAM_ITEMS, names.RECORDER_ITEMS_CONSUMER),
    consume(names.STREAM_DECISIONS, names.RECORDER_DECISIONS_CONSUMER),
    consume(names.STREAM_EVENTS, names.WEBHOOKS_CONSUMER),
    kv_read_write(names.KV_SCHEDULED_JOBS),
)

API = _total(
    stream_info(names.STREAM_JOBS, names.STREAM_EVENTS, names.STREAM_ITEMS),
    read_stream_messages(names.STREAM_EVENTS),
    list_consumers(names.STREAM_JOBS),
    consumer_info(names.STREAM_EVENTS, names.RECORDER_EVENTS_CONSUMER),
    consumer_info(names.STREAM_ITEMS, names.RECORDER_ITEMS_CONSUMER),
    ordered_consumer(names.STREAM_EVENTS),
    kv_read_write(names.KV_SCHEDULED_JOBS),
    stream_info(kv_stream_name(names.KV_TICKER_LEADER)),
    kv_read(names.KV_TICKER_STATE),
    kv_read(names.KV_RUNNING),
    kv_read(names.KV_SCRAPERS),
    kv_read(names.KV_LAST_RUNS),
    kv_read(names.KV_SCREENSHOTS),
    publish(names.JOBS_TRIGGER, names.JOBS_BACKFILL, names.JOBS_CANCEL, names.TICKER_STATUS),
    serve(API_REQUESTS, MICRO_DISCOVERY),
)
"""Schedules, the system's state, the requests to the services, and the NATS micro face;
EVENTS read by subject (a job the recorder has not written yet: its newest event), and
runs' status changes followed from EVENTS for the console's live lists (an ordered
consumer: it reads, never acks, and no durable is its to take). The lease bucket is only
looked up (its config, at start), never read: who leads, the tickers say themselves
(`natscron.ticker.status`)."""

CLI = _total(
    kv_read_write(names.KV_SCHEDULED_JOBS),
    kv_read(names.KV_SCRAPERS),
    publish(API_REQUESTS, MICRO_DISCOVERY),
)
"""`natscron` commands run by hand: everything through the API's micro face, but `apply`
and `migrate`, which write schedules checked against the scraper catalogue."""

PROVISION = _total(
    publish(
        f"{JS_API}.INFO",
        f"{JS_API}.STREAM.INFO.*",
        f"{JS_API}.STREAM.CREATE.*",
        f"{JS_API}.STREAM.UPDATE.*",
        f"{JS_API}.CONSUMER.INFO.*.*",
        f"{JS_API}.CONSUMER.CREATE.>",
        f"{JS_API}.CONSUMER.DURABLE.CREATE.>",
        *(f"{JS_API}.CONSUMER.DELETE.{r.stream}.{r.name}" for r in RETIRED_CONSUMERS),
    ),
)
"""The JetStream layout's administrator: creates and updates streams, buckets and
consumers, deletes only the consumers the layout retires, and reads and publishes no
message."""

USERS = (
    NatsUser("ticker", TICKER),
    NatsUser("runner", RUNNER),
    NatsUser("recorder", RECORDER),
    NatsUser("api", API),
    NatsUser("cli", CLI),
    NatsUser("provision", PROVISION),
)


def _subjects(subjects: tuple[str, ...], indent: str) -> str:
    lines = "".join(f'{indent}  "{subject}"\n' for subject in subjects)
    return f"[\n{lines}{indent}]"


def _user_block(user: NatsUser) -> str:
    grants = user.permissions
    lines = [
        "    {",
        f"      user: {user.name}",
        f"      password: ${user.password_variable}",
        "      permissions: {",
        f"        publish: {{ allow: {_subjects(grants.publish, '        ')} }}",
        f"        subscribe: {{ allow: {_subjects(grants.subscribe, '        ')} }}",
    ]
    if grants.allow_responses:
        lines.append("        allow_responses: true")
    lines += ["      }", "    }"]
    return "\n".join(lines)


def auth_conf() -> str:
    """The nats-server `authorization` block, for `include` in the server's config."""
    header = (
        "# natscron's NATS users and permissions. Generated by"
        " `python -m natscron.provisioning.nats_permissions`: edit that module, not this file.\n"
        "# Each password comes from the server's environment: "
        + ", ".join(f"${user.password_variable}" for user in USERS)
        + ".\n"
    )
    users = "\n".join(_user_block(user) for user in USERS)
    return f"{header}authorization {{\n  users = [\n{users}\n  ]\n}}\n"


if __name__ == "__main__":
    print(auth_conf(), end="")
