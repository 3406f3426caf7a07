"""The runner's records in KV `last_runs`, on a real nats-server: only the final events of
scheduled runs of intervals `from: last_run`, never over the record of a later slot's run."""

from datetime import UTC, datetime, timedelta

from nats.aio.client import Client
from nats.js.errors import KeyNotFoundError
from prometheus_client import CollectorRegistry

from natscron_runner.last_runs import LastRunWriter
from natscron_runner.metrics import RunnerMetrics
from natscron_shared.contract import names
from natscron_shared.contract.enums import JobStatus
from natscron_shared.contract.last_runs import LastRun, LastRunRecord
from natscron_shared.contract.messages import JobEvent, slot_run_request
from natscron_shared.contract.models import ScheduledJob

T0 = datetime(2026, 11, 25, 12, tzinfo=UTC)
SPEC = ScheduledJob.model_validate(
    {
        "scheduled_job_id": "after",
        "name": "after",
        "scraper": "noop",
        "interval": {"minutes": 1, "from": "last_run"},
    }
)


def ended(slot: datetime, at: datetime, status: JobStatus = JobStatus.COMPLETED) -> JobEvent:
    return JobEvent(job=slot_run_request(SPEC, slot, slot), status=status, at=at, completed_at=at)


async def test_a_later_slots_record_is_never_replaced_by_an_earlier_ones(nc: Client) -> None:
    bucket = await nc.jetstream().key_value(names.KV_LAST_RUNS)
    registry = CollectorRegistry()
    metrics = RunnerMetrics.on(registry)
    writer = LastRunWriter(bucket, metrics.nats_errors, metrics.bad_messages)

    async def stored() -> LastRun:
        return LastRun.from_json((await bucket.get("after")).value or b"")

    later, earlier = T0 + timedelta(minutes=2), T0
    await writer.record(ended(later, later + timedelta(seconds=5)))
    assert await stored() == LastRun(later, later + timedelta(seconds=5))
    # The run of an earlier slot (fired by catch-up alongside it) ends after it: kept out.
    await writer.record(ended(earlier, later + timedelta(seconds=30), JobStatus.FAILED))
    assert await stored() == LastRun(later, later + timedelta(seconds=5))
    # The next slot's run replaces it, and the value says how it ended.
    following = later + timedelta(minutes=1)
    await writer.record(ended(following, following + timedelta(seconds=1), JobStatus.FAILED))
    record = LastRunRecord.model_validate_json((await bucket.get("after")).value or b"")
    assert (record.scheduled_for, record.status) == (following, JobStatus.FAILED)
    assert record.job_id == slot_run_request(SPEC, following, following).job_id
    assert (
        registry.get_sample_value("natscron_runner_nats_errors_total", {"operation": "last_run"})
        is None
    )


async def test_only_final_events_of_runs_that_record_their_end_are_written(nc: Client) -> None:
    bucket = await nc.jetstream().key_value(names.KV_LAST_RUNS)
    registry = CollectorRegistry()
    metrics = RunnerMetrics.on(registry)
    writer = LastRunWriter(bucket, metrics.nats_errors, metrics.bad_messages)
    running = ended(T0, T0).model_copy(update={"status": JobStatus.RUNNING})
    plain = ended(T0, T0).model_copy(
        update={
            "job": slot_run_request(
                SPEC.model_copy(update={"interval": None, "interval_minutes": 1}), T0, T0
            )
        }
    )
    for event in (running, plain):
        await writer.record(event)
    try:
        await bucket.get("after")
    except KeyNotFoundError:
        pass
    else:
        raise AssertionError("a record was written for an event that is not one to record")

    bad_key = ended(T0, T0).model_copy(
        update={
            "job": slot_run_request(SPEC, T0, T0).model_copy(update={"scheduled_job_id": "a.b"})
        }
    )
    await writer.record(bad_key)
    reasons = {"reason": "invalid_last_run"}
    assert registry.get_sample_value("natscron_runner_bad_messages_total", reasons) == 1
