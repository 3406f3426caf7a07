"""Every channel of the message contract: subject, payload model, who sends, who receives.

`natscron asyncapi` renders this table as the AsyncAPI document in docs/asyncapi.yaml,
and a test fails when that file no longer matches it.
"""

from dataclasses import dataclass

from pydantic import BaseModel

from natscron_shared.contract import names
from natscron_shared.contract.backfill import BackfillReply, BackfillRequest
from natscron_shared.contract.cancel import CancelReply, CancelRequest
from natscron_shared.contract.chains import ParentFinish
from natscron_shared.contract.decisions import Decision
from natscron_shared.contract.enums import Priority
from natscron_shared.contract.messages import (
    ErrorReply,
    ItemBatch,
    JobEvent,
    RunRequest,
    ScheduleEvent,
    TriggerReply,
    TriggerRequest,
)
from natscron_shared.contract.presence import PresenceProbe, TickerPresence
from natscron_shared.contract.ticker_status import TickerStatus, TickerStatusProbe


@dataclass(frozen=True)
class Channel:
    subject: str
    payload: type[BaseModel]
    sender: str
    receiver: str
    description: str
    stream: str | None = None
    reply: tuple[type[BaseModel], ...] = ()


POOL = "{pool}"


def _run_lane(priority: Priority) -> Channel:
    return Channel(
        names.run_subject(POOL, priority),
        RunRequest,
        "ticker",
        "runner",
        f"A job to run, {priority.value} lane of a runner pool; Nats-Msg-Id is the job id, so"
        " a slot is stored once. Work-queue stream: each request is taken by one runner of"
        f" the pool, through consumer {names.runner_consumer(POOL, priority)}.",
        stream=names.STREAM_JOBS,
    )


def _retry_lane(priority: Priority) -> Channel:
    return Channel(
        names.retry_subject(POOL, priority),
        RunRequest,
        "runner",
        "runner",
        f"The next attempt of a failed job, {priority.value} lane of its pool; Nats-Msg-Id is"
        " job_id:attempt. The JOBS stream stores it as"
        f" {names.run_subject(POOL, priority)} (a subject transform), so runners take it with"
        " the lane's run requests and only the ticker publishes on jobs.run.",
        stream=names.STREAM_JOBS,
    )


CHANNELS: tuple[Channel, ...] = (
    Channel(
        names.JOBS_TRIGGER,
        TriggerRequest,
        "CLI, API",
        "ticker",
        "Run a scheduled job now, or an ad-hoc job. Request/reply (or fire-and-forget) in the"
        f" queue group {names.TICKER_QUEUE!r}: any ticker answers, leader or not.",
        reply=(TriggerReply, ErrorReply),
    ),
    Channel(
        names.JOBS_BACKFILL,
        BackfillRequest,
        "CLI, API",
        "ticker",
        "Publish the past slots of a scheduled job that never ran, once each (the job id a"
        " normal fire of the slot gets), on the normal lane. Request/reply in the queue"
        f" group {names.TICKER_QUEUE!r}: any ticker answers.",
        reply=(BackfillReply, ErrorReply),
    ),
    Channel(
        names.JOBS_CANCEL,
        CancelRequest,
        "CLI, API",
        "runner",
        "Cancel a job: running, its runner stops it within a second; queued, the runner that"
        " takes it ends it without running it. Request/reply (or fire-and-forget) in the"
        f" queue group {names.RUNNER_QUEUE!r}: any runner answers. The cancel is a marker"
        f" in KV {names.KV_CANCELS!r} (key: the job id) that every runner watches; the"
        " reply says where the job was found.",
        reply=(CancelReply, ErrorReply),
    ),
    Channel(
        f"{names.TICKER_PRESENCE_PREFIX}.{{ticker_digest}}",
        PresenceProbe,
        "ticker (standby)",
        "ticker (the lease holder)",
        "Is the lease holder alive? Each ticker answers on its own subject (a digest of its id)"
        ' while its connection lives; "no responders" tells a standby it may take the lease'
        " at once instead of waiting for the TTL.",
        reply=(TickerPresence,),
    ),
    Channel(
        names.TICKER_STATUS,
        TickerStatusProbe,
        "API",
        "every ticker",
        "Who leads, since when, and how many specs each ticker follows. No queue group: every"
        " ticker answers, so the requester gathers replies for a short window; NATS's"
        ' "no responders" ends it at once when no ticker runs.',
        reply=(TickerStatus,),
    ),
    _run_lane(Priority.IMMEDIATE),
    _run_lane(Priority.NORMAL),
    _retry_lane(Priority.IMMEDIATE),
    _retry_lane(Priority.NORMAL),
    Channel(
        f"{names.JOBS_EVENTS_PREFIX}.{{job_id}}",
        JobEvent,
        "ticker, runner",
        "recorder",
        "A status change of one job; (attempt, status) orders them, so a late or repeated"
        " event never moves a job backwards. Nats-Msg-Id: job_id:attempt:status.",
        stream=names.STREAM_EVENTS,
    ),
    Channel(
        f"{names.SCHEDULED_JOBS_EVENTS_PREFIX}.{{scheduled_job_id}}",
        ScheduleEvent,
        "ticker",
        "recorder",
        "The ticker's newest computation of a scheduled job's next run.",
        stream=names.STREAM_EVENTS,
    ),
    Channel(
        f"{names.ITEMS_PREFIX}.{{job_id}}",
        ItemBatch,
        "runner",
        "recorder",
        "Part of what one job scraped, at most 100 items; Nats-Msg-Id: job_id:items:batch.",
        stream=names.STREAM_ITEMS,
    ),
    Channel(
        f"{names.DECISIONS_PREFIX}.{{scheduled_job_id}}",
        Decision,
        "ticker, runner",
        "recorder",
        "Why slots of a scheduled job did not fire as scheduled, when only the deciding"
        " process knows: merged or dropped by catch-up, skipped while paused, after max_runs,"
        " skipped by the overlap policy, a chain's run fired or held. The recorder merges the"
        " records of one decision (its key) into one document. Nats-Msg-Id: the key and the"
        " end of the window it covers.",
        stream=names.STREAM_DECISIONS,
    ),
    Channel(
        f"{names.CHAINS_FINISHED_PREFIX}.{{scheduled_job_id}}",
        ParentFinish,
        "runner",
        "ticker",
        "The end of a run of a schedule others run after (its request said chain_parent);"
        " Nats-Msg-Id: the job id. Work-queue stream, pulled by the leading ticker through"
        f" consumer {names.CHAINS_CONSUMER}, one at a time.",
        stream=names.STREAM_CHAINS,
    ),
)
