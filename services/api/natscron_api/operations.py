"""What the API does, independent of how it is asked: the HTTP face (`http_app`) and the
NATS micro face (`micro`) call the same parts, each over what it touches. Each operation
returns a view model (`views.py`) or raises an error with a stable code (`errors.py`).

- `Queries`: the recorder's documents in MongoDB (scheduled jobs, runs, statistics);
- `JobLookup`: one job, from MongoDB or, until the recorder has written it, from EVENTS;
- `Specs`: the specs in KV `scheduled_jobs` (written, paused, resumed, deleted, previewed);
- `Commands`: runs triggered, retried, backfilled and cancelled, through the services;
- `Status`: the scheduler as a whole (leader, lag, runners, system-wide counts);
- `Screenshots`: the pictures runners kept of failed browser scrapes (KV `screenshots`);
- `JobCancels`: many jobs cancelled at once, by ids or the labels of their scheduled jobs;
- `CrawlerJobs`: scheduled jobs as seed 004 lists its jobs;
- `Explain`: why each slot of a schedule fired, moved, merged or did not run (the spec in
  KV, the runs and decision records in MongoDB);
- `ScheduleDirectory`: every scheduled job's id and name, from KV (listings, searches);
- `RunFeed`: runs' status changes as they happen, from stream EVENTS (live lists).
"""

from dataclasses import dataclass

from nats.aio.client import Client
from prometheus_client import CollectorRegistry
from pymongo.asynchronous.database import AsyncDatabase

from natscron_api.bulk_cancel import JobCancels
from natscron_api.commands import Commands
from natscron_api.crawler_jobs import CrawlerJobs
from natscron_api.explain import Explain
from natscron_api.job_lookup import JobLookup
from natscron_api.live_state import LiveState
from natscron_api.queries import Queries
from natscron_api.run_feed import RunFeed
from natscron_api.schedule_directory import ScheduleDirectory
from natscron_api.screenshots import Screenshots
from natscron_api.specs import Specs
from natscron_api.status import Status
from natscron_shared.contract.storage import Document
from natscron_shared.runtime.clock import Clock


@dataclass(frozen=True)
class Operations:
    queries: Queries
    jobs: JobLookup
    specs: Specs
    commands: Commands
    status: Status
    screenshots: Screenshots
    cancels: JobCancels
    crawler_jobs: CrawlerJobs
    explain: Explain
    directory: ScheduleDirectory
    run_feed: RunFeed

    @classmethod
    def over(
        cls,
        client: Client,
        db: AsyncDatabase[Document],
        clock: Clock,
        registry: CollectorRegistry,
    ) -> "Operations":
        """The parts over one NATS connection and one MongoDB database; the directory is
        empty until something follows KV with it (`ApiService`)."""
        live = LiveState(client.jetstream())
        directory = ScheduleDirectory()
        queries = Queries(db, clock, directory)
        commands = Commands(client)
        return cls(
            queries=queries,
            jobs=JobLookup(queries, client.jetstream()),
            specs=Specs(live, clock),
            commands=commands,
            status=Status(client, live, db, clock),
            screenshots=Screenshots(queries, live),
            cancels=JobCancels(commands, live, db),
            crawler_jobs=CrawlerJobs(db, live),
            explain=Explain(live, db, clock),
            directory=directory,
            run_feed=RunFeed(client.jetstream(), registry),
        )
