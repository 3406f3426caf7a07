"""The recorder's `decisions` documents: every record of a decision merged into one, in any
order and however often delivered; the DECISIONS stream recorded by a running recorder;
decisions pruned with their schedule's runs."""

from datetime import UTC, datetime, timedelta

import pytest
from nats.aio.client import Client
from pymongo.asynchronous.database import AsyncDatabase

from natscron_recorder import RecorderService
from natscron_recorder.decision_batch import DecisionWriter
from natscron_recorder.retention import RetentionRule, RetentionSweep
from natscron_shared.contract.decisions import Decision, DecisionKind
from natscron_shared.contract.storage import Document
from natscron_shared.runtime.clock import ManualClock
from natscron_shared.runtime.endpoints import Endpoints
from natscron_shared.runtime.mongo import ensure_indexes
from natscron_shared.runtime.settings import Settings
from tests.stack import publish
from tests.waiting import eventually

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 25, 12, tzinfo=UTC)
HOUR = timedelta(hours=1)
OPENED = Decision(
    scheduled_job_id="s", kind=DecisionKind.PAUSED, at=T0, after=T0, note="maintenance"
)
CLOSED = Decision(
    scheduled_job_id="s", kind=DecisionKind.PAUSED, at=T0 + HOUR, after=T0, until=T0 + HOUR
)


async def stored(db: AsyncDatabase[Document]) -> list[Document]:
    return await db.decisions.find({}, {"recorded_at": 0}).to_list()


@pytest.mark.parametrize("order", [(OPENED, CLOSED), (CLOSED, OPENED), (OPENED, CLOSED, OPENED)])
async def test_a_pause_opened_then_closed_is_one_closed_document_in_any_order(
    mongo_db: AsyncDatabase[Document], order: tuple[Decision, ...]
) -> None:
    await ensure_indexes(mongo_db)
    writer = DecisionWriter(mongo_db)
    for decision in order:
        await writer.record([decision])
    await writer.record(list(order))  # redelivered as one batch
    assert await stored(mongo_db) == [
        {
            "_id": OPENED.key,
            "scheduled_job_id": "s",
            "kind": "paused",
            "at": T0,
            "after": T0,
            "until": T0 + HOUR,
            "slot": None,
            "slots": None,
            "job_id": None,
            "cause_job_id": None,
            "note": "maintenance",
            "starts_at": T0,
            "ends_at": T0 + HOUR,
        }
    ]
    assert OPENED.key == CLOSED.key and OPENED.msg_id != CLOSED.msg_id


HELD = Decision(
    scheduled_job_id="b",
    kind=DecisionKind.CHAIN_HELD,
    at=T0,
    cause_job_id="scheduled_a_1",
    note="waiting for a run of c",
)
HELD_AGAIN = HELD.model_copy(update={"at": T0 + timedelta(seconds=12)})
"""The same finish decided on again by the next leader: later, its note maybe reworded."""


@pytest.mark.parametrize("order", [(HELD, HELD_AGAIN), (HELD_AGAIN, HELD)])
async def test_a_chain_decision_published_by_two_leaders_is_one_document(
    mongo_db: AsyncDatabase[Document], order: tuple[Decision, ...]
) -> None:
    await ensure_indexes(mongo_db)
    writer = DecisionWriter(mongo_db)
    for decision in order:
        await writer.record([decision])
    (document,) = await stored(mongo_db)
    assert document["_id"] == HELD.key == HELD_AGAIN.key and HELD.msg_id == HELD_AGAIN.msg_id
    assert (document["kind"], document["cause_job_id"]) == ("chain_held", "scheduled_a_1")
    assert document["at"] == T0 and document["ends_at"] == HELD_AGAIN.at


async def test_a_running_recorder_records_the_decisions_stream(
    settings: Settings, endpoints: Endpoints, nc: Client, mongo_db: AsyncDatabase[Document]
) -> None:
    skipped = Decision(
        scheduled_job_id="s",
        kind=DecisionKind.OVERLAP_SKIPPED,
        at=T0,
        slot=T0,
        job_id="scheduled_s_1",
        cause_job_id="scheduled_s_0",
        note="overlaps job scheduled_s_0",
    )
    recorder = RecorderService(settings, endpoints)
    await recorder.start()
    try:
        for decision in (skipped, skipped, OPENED):
            await publish(nc.jetstream(), decision.subject, decision, decision.msg_id)
        found = await eventually(
            lambda: stored(mongo_db), lambda docs: len(docs) == 2, what="two decisions"
        )
    finally:
        await recorder.stop()
    by_kind = {doc["kind"]: doc for doc in found}
    assert by_kind["overlap_skipped"]["cause_job_id"] == "scheduled_s_0"
    assert by_kind["overlap_skipped"]["ends_at"] == T0
    assert "ends_at" not in by_kind["paused"]  # open: no retention takes it


async def test_retention_prunes_decisions_with_their_schedules_runs(
    mongo_db: AsyncDatabase[Document],
) -> None:
    await ensure_indexes(mongo_db)
    runs = [
        {"job_id": f"r{n}", "scheduled_job_id": "s", "created_at": T0 - n * 10 * 24 * HOUR,
         "status": "completed"}
        for n in range(5)
    ]  # fmt: skip
    await mongo_db.jobs.insert_many(runs)
    await mongo_db.scheduled_jobs.insert_one({"scheduled_job_id": "s"})
    writer = DecisionWriter(mongo_db)
    ages = {"recent": 5, "kept_by_runs": 15, "old": 45}
    await writer.record(
        [
            Decision(
                scheduled_job_id="s",
                kind=DecisionKind.CATCHUP_DROPPED,
                at=T0 - days * 24 * HOUR,
                after=T0 - (days + 1) * 24 * HOUR,
                until=T0 - days * 24 * HOUR,
                note=name,
            )
            for name, days in ages.items()
        ]
        + [OPENED.model_copy(update={"after": T0 - 100 * 24 * HOUR})]
    )
    # Keep 3 runs or 7 days: the third newest run is 20 days old.
    sweep = RetentionSweep(mongo_db, RetentionRule(keep_runs=3, keep_days=7), ManualClock(T0))
    assert await sweep.sweep() == 2
    notes = {doc.get("note") for doc in await stored(mongo_db)}
    assert notes == {"recent", "kept_by_runs", "maintenance"}
