"""A schedule failing `failure_threshold` times in a row ends paused in KV with its reason;
resuming clears the note and runs it again; pause and resume in bulk by label."""

from datetime import UTC, datetime

import pytest
from nats.aio.client import Client
from nats.js.kv import KeyValue
from pymongo.asynchronous.database import AsyncDatabase

from natscron_recorder.auto_pause import crossed
from natscron_shared.contract import names
from natscron_shared.contract.enums import ScheduledJobStatus
from natscron_shared.contract.errors import BadRequestError
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.contract.storage import Document
from natscron_shared.nats import schedule_bucket
from natscron_shared.nats.schedule_bucket import put_schedules
from natscron_shared.runtime.endpoints import Endpoints
from natscron_shared.runtime.settings import Settings
from tests.stack import running_stack
from tests.waiting import eventually

pytestmark = pytest.mark.integration

FAILING = ScheduledJob(
    scheduled_job_id="always-failing",
    name="Always failing",
    cron_expression="* * * * * *",
    scraper="noop",
    params={"fail_attempts": 1_000_000},
    failure_threshold=3,
)


async def spec_of(bucket: KeyValue, scheduled_job_id: str) -> ScheduledJob:
    entry = await bucket.get(scheduled_job_id)
    return ScheduledJob.model_validate_json(entry.value or b"")


def test_a_pause_comes_at_each_multiple_of_the_threshold() -> None:
    assert crossed(2, 3, 3) and crossed(1, 4, 3) and crossed(5, 6, 3)
    assert not crossed(3, 4, 3) and not crossed(0, 2, 3) and not crossed(0, 9, None)


async def test_a_failing_schedule_pauses_itself_and_resumes(
    settings: Settings, endpoints: Endpoints, mongo_db: AsyncDatabase[Document], nc: Client
) -> None:
    js = nc.jetstream()
    bucket = await js.key_value(names.KV_SCHEDULED_JOBS)
    # Flushes well within the second between runs: the pause comes at the threshold run.
    settings = settings.model_copy(update={"recorder_flush_seconds": 0.2})
    async with running_stack(settings, endpoints):
        await put_schedules(js, [FAILING])
        paused = await eventually(
            lambda: spec_of(bucket, FAILING.scheduled_job_id),
            lambda spec: spec.status is ScheduledJobStatus.PAUSED,
            within=30,
            what="paused after three failures",
        )
        assert paused.paused_reason == "3 runs in a row failed (failure_threshold 3)"
        assert paused.paused_at is not None

        async def failures() -> int:
            history = await mongo_db.scheduled_jobs.find_one(
                {"scheduled_job_id": FAILING.scheduled_job_id}
            )
            return 0 if history is None else int(history.get("consecutive_failures", 0))

        # The pause is written just before the batch that counted the failures commits.
        await eventually(failures, lambda count: count >= 3, what="the failures recorded")

        async def runs() -> int:
            return await mongo_db.jobs.count_documents(
                {"scheduled_job_id": FAILING.scheduled_job_id}
            )

        before_resume = await runs()
        (resumed,) = await schedule_bucket.resume(bucket, [FAILING.scheduled_job_id])
        assert resumed.outcome == "resumed"
        spec = await spec_of(bucket, FAILING.scheduled_job_id)
        assert spec.status is ScheduledJobStatus.ACTIVE
        assert spec.paused_reason is None and spec.paused_at is None
        await eventually(runs, lambda count: count > before_resume, what="runs after resuming")
        await eventually(
            lambda: spec_of(bucket, FAILING.scheduled_job_id),
            lambda spec: spec.status is ScheduledJobStatus.PAUSED,
            within=30,
            what="paused again after three more failures",
        )


async def test_bulk_pause_and_resume_by_label(nc: Client) -> None:
    js = nc.jetstream()
    bucket = await js.key_value(names.KV_SCHEDULED_JOBS)
    specs = [
        FAILING.model_copy(
            update={"scheduled_job_id": f"job-{n}", "labels": {"team": "a" if n < 3 else "b"}}
        )
        for n in range(5)
    ]
    await put_schedules(js, specs)
    chosen = await schedule_bucket.select(bucket, schedule_bucket.parse_selector("team=a"))
    assert chosen == ["job-0", "job-1", "job-2"]
    now = datetime.now(UTC)
    results = await schedule_bucket.pause(bucket, chosen, "maintenance", now)
    assert [r.outcome for r in results] == ["paused"] * 3
    again = await schedule_bucket.pause(bucket, ["job-0", "missing"], "again", now)
    assert [r.outcome for r in again] == ["unchanged", "not_found"]
    statuses = {s.scheduled_job_id: (await spec_of(bucket, s.scheduled_job_id)) for s in specs}
    assert [statuses[f"job-{n}"].status for n in range(5)] == ["paused"] * 3 + ["active"] * 2
    assert statuses["job-1"].paused_reason == "maintenance"
    resumed = await schedule_bucket.resume(bucket, ["job-1", "job-4"])
    assert [r.outcome for r in resumed] == ["resumed", "unchanged"]
    deleted = await schedule_bucket.delete(bucket, ["job-4"])
    assert deleted[0].outcome == "deleted"
    assert await schedule_bucket.select(bucket, {"team": "b"}) == ["job-3"]
    with pytest.raises(BadRequestError):
        schedule_bucket.parse_selector("team")
