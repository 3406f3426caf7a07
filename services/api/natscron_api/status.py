"""The scheduler as a whole: who leads and who runs (as the tickers and runners say), the
lag of every consumer, and system-wide counts and run statistics (all time, and the last
hour, day, week and month)."""

from nats.aio.client import Client
from pymongo.asynchronous.database import AsyncDatabase

from natscron_api.live_state import LiveState
from natscron_api.stats import LONGEST_WINDOW_HOURS, stats_of, windows
from natscron_api.views import (
    DaemonStatus,
    JobCounts,
    ScheduledJobCounts,
    SchedulerMetrics,
    SchedulerStatus,
    StatsSummary,
)
from natscron_shared.contract import names
from natscron_shared.contract.enums import ScheduledJobStatus
from natscron_shared.contract.job_stats import (
    ADHOC_SCOPE,
    ALL_TIME,
    SYSTEM_SCOPE,
    stats_id,
    summary,
)
from natscron_shared.contract.storage import Document
from natscron_shared.nats.ticker_statuses import gather_ticker_statuses
from natscron_shared.runtime.clock import Clock
from natscron_shared.runtime.mongo import job_stats, scheduled_jobs


class Status:
    def __init__(
        self, client: Client, live: LiveState, db: AsyncDatabase[Document], clock: Clock
    ) -> None:
        self._client = client
        self._live = live
        self._db = db
        self._clock = clock

    async def status(self) -> SchedulerStatus:
        """Who leads (as the tickers say: the API may not read the lease), how many specs
        the tickers follow, and the lag of every consumer."""
        tickers = await gather_ticker_statuses(self._client)
        leader = next((ticker for ticker in tickers if ticker.leading), None)
        schedules = await self._live.keys(names.KV_SCHEDULED_JOBS)
        lanes = await self._live.runner_lanes()
        recorder = [
            await self._live.lag(names.STREAM_EVENTS, names.RECORDER_EVENTS_CONSUMER),
            await self._live.lag(names.STREAM_ITEMS, names.RECORDER_ITEMS_CONSUMER),
        ]
        catalogue = await self._live.catalogue()
        return SchedulerStatus(
            leader=None if leader is None else leader.ticker_id,
            leader_since=None if leader is None else leader.leading_since,
            tickers=tickers,
            schedules_loaded=len(schedules),
            lanes=lanes,
            recorder=recorder,
            runners=sorted({entry.runner_id for entry in catalogue.entries()}),
            scrapers=catalogue.names(),
            pools={pool: catalogue.offered_in(pool) for pool in catalogue.pools()},
            at=self._clock.now(),
        )

    async def daemon(self) -> DaemonStatus:
        """Seed 002's daemon status: the leader runs, checks its schedules and fires them;
        `tasks_executed` adds up the slots every ticker that answered has fired."""
        tickers = await gather_ticker_statuses(self._client)
        leader = next((ticker for ticker in tickers if ticker.leading), None)
        fired = [ticker.slots_fired for ticker in tickers]
        return DaemonStatus(
            running=leader is not None,
            last_check=None if leader is None else leader.last_check,
            schedules_checked=0 if leader is None else leader.schedules_loaded,
            tasks_executed=None if None in fired else sum(count or 0 for count in fired),
            leader=None if leader is None else leader.ticker_id,
            at=self._clock.now(),
        )

    async def metrics(self) -> SchedulerMetrics:
        """System-wide: schedules by status, jobs queued and running now, run statistics."""
        collection = scheduled_jobs(self._db)
        counts = {
            status.value: await collection.count_documents({"status": status.value})
            for status in ScheduledJobStatus
        }
        now = self._clock.now()
        all_time, hourly = await stats_of(self._db, SYSTEM_SCOPE, LONGEST_WINDOW_HOURS, now)
        adhoc = await job_stats(self._db).find_one({"_id": stats_id(ADHOC_SCOPE, ALL_TIME)})
        lanes = await self._live.runner_lanes()
        running = await self._live.keys(names.KV_RUNNING)
        return SchedulerMetrics(
            scheduled_jobs=ScheduledJobCounts(total=sum(counts.values()), **counts),
            jobs=JobCounts(
                queued=sum(lane.pending for lane in lanes),
                running=sum(1 for key in running if key.startswith("job.")),
            ),
            all_time=StatsSummary(**summary(all_time or {})),
            **windows(hourly, now),
            adhoc_all_time=StatsSummary(**summary(adhoc or {})),
            at=self._clock.now(),
        )
