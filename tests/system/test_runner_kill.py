"""A SIGKILLed runner's jobs run again on the other runner within seconds: progress acks
keep the runners' ack wait short (10 s), so a job whose runner died is redelivered once
its last renewal is that old, not after a minute.

Real processes, as deployed: a ticker, two runners and a recorder on the test's servers.
Three schedules fire every second into one-second scrapes; runner-1 is killed as soon as
its `running` event for a job is seen (so it dies in that job). Every job it was running
(a `running` event of runner-1 and no end by it) must complete on runner-2 within
`COMPLETE_WITHIN` of the kill, run there once, and be recorded once, completed.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from natscron_shared.contract import names
from natscron_shared.contract.enums import JobStatus, ScheduledJobStatus
from natscron_shared.contract.messages import JobEvent
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.nats.schedule_bucket import put_schedules
from natscron_shared.runtime.endpoints import Endpoints
from natscron_shared.runtime.mongo import database_of, new_client
from tests.processes import Fleet
from tests.servers import Server
from tests.waiting import eventually

pytestmark = pytest.mark.integration

SCHEDULE_IDS = [f"kill-{n}" for n in range(3)]
SCRAPE_SECONDS = 1.0
COMPLETE_WITHIN = 15.0
"""The issue's target: the ack wait (10 s, counted from the last renewal, up to a third of
it before the kill), then the scrape itself."""
STEP_WITHIN = 60.0


def spec(scheduled_job_id: str, status: ScheduledJobStatus) -> ScheduledJob:
    return ScheduledJob(
        scheduled_job_id=scheduled_job_id,
        name=f"Runner kill {scheduled_job_id}",
        status=status,
        cron_expression="* * * * * *",
        scraper="noop",
        params={"delay_seconds": SCRAPE_SECONDS},
    )


@dataclass
class Events:
    """Every job event, as a core subscriber to `jobs.events.>` sees it."""

    by_job: dict[str, list[JobEvent]] = field(default_factory=lambda: defaultdict(list))

    async def on_event(self, msg: Msg) -> None:
        event = JobEvent.model_validate_json(msg.data)
        self.by_job[event.job.job_id].append(event)

    def interrupted(self, runner_id: str) -> list[str]:
        """Jobs `runner_id` started and never ended: those it was running when killed."""
        return sorted(
            job_id
            for job_id, events in self.by_job.items()
            if any(_is(e, JobStatus.RUNNING, runner_id) for e in events)
            and not any(e.status.is_terminal and e.runner_id == runner_id for e in events)
        )

    def ends(self, job_id: str) -> list[JobEvent]:
        return [e for e in self.by_job[job_id] if e.status.is_terminal]


def _is(event: JobEvent, status: JobStatus, runner_id: str) -> bool:
    return event.status is status and event.runner_id == runner_id


@pytest.mark.timeout(180)
async def test_a_killed_runners_jobs_complete_on_the_other_within_seconds(
    nats_server: Server, endpoints: Endpoints, nc: Client, tmp_path: Path
) -> None:
    fleet = Fleet(
        log_dir=tmp_path,
        base_env={
            "NATSCRON_NATS_URL": nats_server.url,
            "NATSCRON_MONGO_URL": endpoints.mongo_url or "",
            "NATSCRON_DATA_DIR": str(tmp_path / "data"),
            "NATSCRON_SHUTDOWN_GRACE_SECONDS": "5",
            "NATSCRON_RUNNER_CONCURRENCY": "8",
        },
    )
    recorder = fleet.service("recorder", "recorder")
    runners = [
        fleet.service(f"runner-{n}", "runner", NATSCRON_RUNNER_ID=f"runner-{n}") for n in (1, 2)
    ]
    ticker = fleet.service("ticker", "ticker")
    events = Events()
    subscription = await nc.subscribe(f"{names.JOBS_EVENTS_PREFIX}.>", cb=events.on_event)
    client = new_client(endpoints.mongo_url or "")
    js = nc.jetstream()
    try:
        for service in (recorder, *runners, ticker):
            await service.start()
        for service in (recorder, *runners, ticker):
            await service.wait_ready()
        await put_schedules(js, [spec(i, ScheduledJobStatus.ACTIVE) for i in SCHEDULE_IDS])

        async def in_a_job() -> list[str]:
            runners[0].ensure_alive()
            return events.interrupted("runner-1")

        await eventually(in_a_job, within=STEP_WITHIN, what="runner-1 in a job")
        await runners[0].kill()
        killed_at = datetime.now(UTC)

        async def interrupted_ends() -> dict[str, list[JobEvent]]:
            runners[1].ensure_alive()
            return {job: events.ends(job) for job in events.interrupted("runner-1")}

        ended = await eventually(
            interrupted_ends,
            lambda ends: bool(ends) and all(ends.values()),
            within=COMPLETE_WITHIN + 10,
            what="the killed runner's jobs ended elsewhere",
        )
        await put_schedules(js, [spec(i, ScheduledJobStatus.PAUSED) for i in SCHEDULE_IDS])

        late = {
            job: round((ends[0].at - killed_at).total_seconds(), 2)
            for job, ends in ended.items()
            if (ends[0].at - killed_at).total_seconds() > COMPLETE_WITHIN
        }
        assert not late, f"completed later than {COMPLETE_WITHIN}s after the kill: {late}"
        for job, ends in ended.items():
            assert [(e.status, e.runner_id) for e in ends] == [(JobStatus.COMPLETED, "runner-2")], (
                job
            )
            again = [e for e in events.by_job[job] if _is(e, JobStatus.RUNNING, "runner-2")]
            assert len(again) == 1, f"{job} ran {len(again)} times on runner-2"

        jobs = database_of(client)["jobs"]

        async def recorded() -> list[tuple[str, str | None]]:
            docs = jobs.find({"job_id": {"$in": list(ended)}}, {"status": 1, "runner_id": 1})
            return sorted([(d["status"], d.get("runner_id")) async for d in docs])

        await eventually(
            recorded,
            lambda docs: docs == [(JobStatus.COMPLETED.value, "runner-2")] * len(ended),
            within=STEP_WITHIN,
            what="each killed job recorded once, completed on runner-2",
        )
        print(
            f"runner-1 killed in {len(ended)} jobs; completed on runner-2 after"
            f" {sorted((e[0].at - killed_at).total_seconds() for e in ended.values())} s"
        )
    except BaseException:
        print(fleet.log_tails())
        raise
    finally:
        await subscription.unsubscribe()
        await client.close()
        await fleet.kill_all()
        assert fleet.survivors() == []
