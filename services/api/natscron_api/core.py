"""What the API does, independent of how it is asked: the HTTP face (`http_app`) calls
these methods, and so will the NATS micro face and the CLI. Each returns a view model or
raises an error with a stable code (`natscron_api.errors`).

- Reads come from MongoDB (the recorder's documents) and, for live state, from JetStream
  (KV buckets, consumer info).
- Writes go where natscron keeps its truth: specs to KV `scheduled_jobs` (as `natscron
  apply` does, checked against the scraper catalogue), pauses and resumes through
  `schedule_controls`, triggers and retries to `jobs.trigger`, cancels to `jobs.cancel`.
  Nothing here writes MongoDB.
"""

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

import nats.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import (
    BucketNotFoundError,
    KeyDeletedError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
    NotFoundError,
)
from nats.js.kv import KeyValue
from pydantic import ValidationError
from pymongo import DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from natscron_api.cursor import cursor_moment, decode_cursor, encode_cursor
from natscron_api.describe import describe
from natscron_api.errors import (
    ApiError,
    problems_sentence,
    unavailable,
    unknown_job,
    unknown_scheduled_job,
)
from natscron_api.views import (
    BulkControlResult,
    ConsumerLag,
    ControlResult,
    ExecutionList,
    ExecutionView,
    HourlyStats,
    JobCounts,
    JobStats,
    Preview,
    ScheduledJobCounts,
    ScheduledJobDetail,
    ScheduledJobList,
    ScheduledJobView,
    SchedulerMetrics,
    SchedulerStatus,
    SpecWritten,
    StatsSummary,
)
from natscron_shared.contract import names
from natscron_shared.contract.backfill import BackfillReply, BackfillRequest
from natscron_shared.contract.cancel import CancelReply, CancelRequest
from natscron_shared.contract.catalogue import NoRunnersError, check_job, no_runners_message
from natscron_shared.contract.enums import JobStatus, Priority, ScheduledJobStatus, Trigger
from natscron_shared.contract.job_stats import (
    ADHOC_SCOPE,
    ALL_TIME,
    COUNTERS,
    SYSTEM_SCOPE,
    hour_period,
    stats_id,
    summary,
)
from natscron_shared.contract.messages import TriggerReply, TriggerRequest
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.contract.storage import JOB_STATS, JOBS, SCHEDULED_JOBS, Document
from natscron_shared.contract.ticker_state import SlotState, runs_left
from natscron_shared.nats import schedule_bucket
from natscron_shared.nats.connection import TRANSIENT_NATS_ERRORS, to_json
from natscron_shared.nats.kv_watch import current_values
from natscron_shared.nats.scrapers_bucket import load_catalogue
from natscron_shared.nats.ticker_statuses import gather_ticker_statuses
from natscron_shared.runtime.clock import Clock
from natscron_shared.timing.schedule import next_fire_after

REQUEST_TIMEOUT_SECONDS = 10.0
HIDDEN_FIELDS = {"_id": 0, "progress": 0, "saved_batches": 0}
"""Bookkeeping of the recorder's write guards, not for readers (`_id` is not JSON)."""
RUN_ORDER = [("created_at", DESCENDING), ("job_id", DESCENDING)]
SUMMED = (*COUNTERS, "duration_ms_sum", "duration_count", "items_scraped", "items_saved")
SAFE_LABEL_KEY = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$"
Action = Literal["pause", "resume", "delete"]


class ApiCore:
    """The operations, over one NATS connection and one MongoDB database."""

    def __init__(
        self,
        client: Client,
        db: AsyncDatabase[Document],
        clock: Clock,
        request_timeout: float = REQUEST_TIMEOUT_SECONDS,
    ) -> None:
        self._client = client
        self._js: JetStreamContext = client.jetstream()
        self._db = db
        self._clock = clock
        self._timeout = request_timeout
        self._buckets: dict[str, KeyValue] = {}

    # --- seed 001: scheduled jobs and their runs, from MongoDB ---------------------------

    async def list_scheduled_jobs(
        self,
        status: ScheduledJobStatus | None = None,
        selector: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> ScheduledJobList:
        """Sorted by id; `total` counts every match, `next_cursor` pages on."""
        query: Document = {}
        if status is not None:
            query["status"] = status.value
        if selector is not None:
            query.update(_label_query(selector))
        collection = self._db[SCHEDULED_JOBS]
        total = await collection.count_documents(query)
        page = dict(query)
        if cursor is not None:
            (last,) = decode_cursor(SCHEDULED_JOBS, cursor, 1)
            page["scheduled_job_id"] = {"$gt": last}
        found = collection.find(page, HIDDEN_FIELDS).sort("scheduled_job_id", 1)
        docs = await found.limit(limit + 1).to_list()
        more = len(docs) > limit
        docs = docs[:limit]
        return ScheduledJobList(
            scheduled_jobs=[ScheduledJobView.model_validate(doc) for doc in docs],
            total=total,
            next_cursor=(
                encode_cursor(SCHEDULED_JOBS, [docs[-1]["scheduled_job_id"]]) if more else None
            ),
        )

    async def scheduled_job(self, scheduled_job_id: str) -> ScheduledJobView:
        doc = await self._db[SCHEDULED_JOBS].find_one(
            {"scheduled_job_id": scheduled_job_id}, HIDDEN_FIELDS
        )
        if doc is None:
            raise unknown_scheduled_job(scheduled_job_id)
        return ScheduledJobView.model_validate(doc)

    async def scheduled_job_detail(
        self, scheduled_job_id: str, include_runs: bool = True, limit: int = 50
    ) -> ScheduledJobDetail:
        """The job and its newest `limit` runs (none unless `include_runs`)."""
        job = await self.scheduled_job(scheduled_job_id)
        query = {"scheduled_job_id": scheduled_job_id}
        total = await self._db[JOBS].count_documents(query)
        runs: list[Document] = []
        if include_runs:
            found = self._db[JOBS].find(query, HIDDEN_FIELDS).sort(RUN_ORDER)
            runs = await found.limit(limit).to_list()
        return ScheduledJobDetail(
            scheduled_job=job,
            job_runs=[ExecutionView.model_validate(run) for run in runs],
            total_runs=total,
        )

    # --- executions ----------------------------------------------------------------------

    async def executions(
        self,
        scheduled_job_id: str | None = None,
        status: JobStatus | None = None,
        trigger: Trigger | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> ExecutionList:
        """Newest first (by `created_at`, then id); `since` inclusive, `until` exclusive."""
        query: Document = {}
        if scheduled_job_id is not None:
            query["scheduled_job_id"] = scheduled_job_id
        if status is not None:
            query["status"] = status.value
        if trigger is not None:
            query["trigger"] = trigger.value
        created: Document = {}
        if since is not None:
            created["$gte"] = since
        if until is not None:
            created["$lt"] = until
        if created:
            query["created_at"] = created
        collection = self._db[JOBS]
        total = await collection.count_documents(query)
        page = query
        if cursor is not None:
            moment, last_id = decode_cursor(JOBS, cursor, 2)
            at = cursor_moment(moment)
            after = {
                "$or": [
                    {"created_at": {"$lt": at}},
                    {"created_at": at, "job_id": {"$lt": last_id}},
                ]
            }
            page = {"$and": [query, after]} if query else after
        docs = await collection.find(page, HIDDEN_FIELDS).sort(RUN_ORDER).limit(limit + 1).to_list()
        more = len(docs) > limit
        docs = docs[:limit]
        next_cursor = None
        if more:
            last = docs[-1]
            next_cursor = encode_cursor(JOBS, [last["created_at"].isoformat(), last["job_id"]])
        return ExecutionList(
            executions=[ExecutionView.model_validate(doc) for doc in docs],
            total=total,
            next_cursor=next_cursor,
        )

    async def scheduled_job_executions(
        self, scheduled_job_id: str, **filters: Any
    ) -> ExecutionList:
        await self.scheduled_job(scheduled_job_id)
        return await self.executions(scheduled_job_id=scheduled_job_id, **filters)

    async def execution(self, job_id: str) -> ExecutionView:
        doc = await self._db[JOBS].find_one({"job_id": job_id}, HIDDEN_FIELDS)
        if doc is None:
            raise unknown_job(job_id)
        return ExecutionView.model_validate(doc)

    # --- statistics ----------------------------------------------------------------------

    async def job_stats(self, scheduled_job_id: str, hours: int = 24) -> JobStats:
        """All-time counters, and those of the last `hours` UTC hours (the current one
        included), from the `job_stats` documents."""
        await self.scheduled_job(scheduled_job_id)
        all_time, hourly = await self._stats(scheduled_job_id, hours)
        last = await self._db[JOBS].find_one(
            {"scheduled_job_id": scheduled_job_id}, HIDDEN_FIELDS, sort=RUN_ORDER
        )
        return JobStats(
            scheduled_job_id=scheduled_job_id,
            all_time=StatsSummary(**summary(all_time)),
            recent=StatsSummary(**summary(merge_stats(hourly.values()))),
            hours=hours,
            hourly=[HourlyStats(period=p, **summary(doc)) for p, doc in hourly.items()],
            last_execution=None if last is None else ExecutionView.model_validate(last),
        )

    async def scheduler_metrics(self) -> SchedulerMetrics:
        """System-wide: schedules by status, jobs queued and running now, run statistics."""
        collection = self._db[SCHEDULED_JOBS]
        counts = {
            status.value: await collection.count_documents({"status": status.value})
            for status in ScheduledJobStatus
        }
        all_time, hourly = await self._stats(SYSTEM_SCOPE, 24)
        adhoc = await self._db[JOB_STATS].find_one({"_id": stats_id(ADHOC_SCOPE, ALL_TIME)})
        lanes = [await self._lag(names.STREAM_JOBS, names.runner_consumer(p)) for p in Priority]
        running = await self._keys(names.KV_RUNNING)
        return SchedulerMetrics(
            scheduled_jobs=ScheduledJobCounts(total=sum(counts.values()), **counts),
            jobs=JobCounts(
                queued=sum(lane.pending for lane in lanes),
                running=sum(1 for key in running if key.startswith("job.")),
            ),
            all_time=StatsSummary(**summary(all_time)),
            last_24h=StatsSummary(**summary(merge_stats(hourly.values()))),
            adhoc_all_time=StatsSummary(**summary(adhoc or {})),
            at=self._clock.now(),
        )

    async def _stats(self, scope: str, hours: int) -> tuple[Document, dict[str, Document]]:
        """The all-time document of `scope` and its hourly ones, oldest first."""
        now = self._clock.now()
        periods = [hour_period(now - timedelta(hours=back)) for back in reversed(range(hours))]
        wanted = [stats_id(scope, ALL_TIME), *(stats_id(scope, p) for p in periods)]
        docs = {
            doc["_id"]: doc
            for doc in await self._db[JOB_STATS].find({"_id": {"$in": wanted}}).to_list()
        }
        hourly = {p: docs[stats_id(scope, p)] for p in periods if stats_id(scope, p) in docs}
        return docs.get(stats_id(scope, ALL_TIME), {}), hourly

    # --- runs: trigger, retry, cancel (through the services, over NATS) ------------------

    async def trigger(self, request: TriggerRequest) -> TriggerReply:
        """Seed 001's trigger: any ticker answers `jobs.trigger`."""
        answer = await self._request(
            names.JOBS_TRIGGER, request.model_dump_json(exclude_none=True).encode(), "ticker"
        )
        return TriggerReply.model_validate(answer)

    async def backfill(
        self, scheduled_job_id: str, start: datetime, end: datetime, dry_run: bool = False
    ) -> BackfillReply:
        """Publish the past slots in `[start, end]` that never ran; any ticker answers
        `jobs.backfill` (`natscron_shared.contract.backfill`)."""
        try:
            request = BackfillRequest(
                scheduled_job_id=scheduled_job_id, start=start, end=end, dry_run=dry_run
            )
        except ValidationError as exc:
            raise ApiError("invalid_request", problems_sentence(exc.errors())) from None
        answer = await self._request(names.JOBS_BACKFILL, to_json(request), "ticker")
        return BackfillReply.model_validate(answer)

    async def retry(self, job_id: str, priority: Priority = Priority.IMMEDIATE) -> TriggerReply:
        """Run a failed or cancelled job again, as a new job linked to it."""
        return await self.trigger(TriggerRequest(retry_of=job_id, priority=priority))

    async def cancel(self, job_id: str, reason: str | None, by: str) -> CancelReply:
        """Any runner answers `jobs.cancel`; its marker stands whatever it found. A job no
        runner knows of is `unknown_job` (the marker still refuses it if it turns up)."""
        request = CancelRequest(job_id=job_id, reason=reason, by=by)
        answer = await self._request(names.JOBS_CANCEL, to_json(request), "runner")
        reply = CancelReply.model_validate(answer)
        if reply.found == "unknown":
            raise ApiError(
                "unknown_job",
                f"no job with id {job_id!r} was seen; the cancel stays on record for 14 days,"
                " so it is refused if it turns up",
            )
        return reply

    async def _request(self, subject: str, payload: bytes, who: str) -> Any:
        try:
            reply = await self._client.request(subject, payload, timeout=self._timeout)
        except nats.errors.NoRespondersError:
            raise unavailable(f"no {who} answered on {subject}; is one running?") from None
        except (TimeoutError, nats.errors.TimeoutError):
            raise unavailable(f"no {who} answered on {subject} within {self._timeout:g}s") from None
        except TRANSIENT_NATS_ERRORS as exc:
            raise unavailable(f"NATS is unavailable ({type(exc).__name__})") from None
        try:
            answer = json.loads(reply.data)
        except ValueError:
            raise ApiError("remote_error", f"the {who}'s reply on {subject} is not JSON") from None
        error = answer.get("error") if isinstance(answer, dict) else None
        if isinstance(error, dict):
            code, message = str(error.get("code", "remote_error")), str(error.get("message", ""))
            if code == "internal_error":
                raise ApiError("remote_error", f"the {who} failed: {message}")
            raise ApiError(code, message)
        return answer

    # --- schedule controls and specs (KV `scheduled_jobs`) -------------------------------

    async def pause(self, scheduled_job_id: str, reason: str | None) -> ControlResult:
        """An active job becomes paused; any other status is `invalid_state`."""
        bucket = await self._bucket(names.KV_SCHEDULED_JOBS)
        (result,) = await schedule_bucket.pause(
            bucket, [scheduled_job_id], reason, self._clock.now()
        )
        return _single(result)

    async def resume(self, scheduled_job_id: str) -> ControlResult:
        bucket = await self._bucket(names.KV_SCHEDULED_JOBS)
        (result,) = await schedule_bucket.resume(bucket, [scheduled_job_id])
        return _single(result)

    async def bulk(
        self,
        action: Action,
        ids: Sequence[str] | None,
        selector: str | None,
        reason: str | None = None,
    ) -> BulkControlResult:
        """Pause, resume or delete many: by ids, or those whose labels match `selector`. Each
        gets its own outcome; nothing fails as a whole for one unknown id."""
        bucket = await self._bucket(names.KV_SCHEDULED_JOBS)
        if selector is not None:
            chosen = await schedule_bucket.select(bucket, schedule_bucket.parse_selector(selector))
        else:
            chosen = list(dict.fromkeys(ids or ()))
        if action == "pause":
            results = await schedule_bucket.pause(bucket, chosen, reason, self._clock.now())
        elif action == "resume":
            results = await schedule_bucket.resume(bucket, chosen)
        else:
            results = await schedule_bucket.delete(bucket, chosen)
        views = [_view(result) for result in results]
        changed = sum(1 for view in views if view.outcome in ("paused", "resumed", "deleted"))
        return BulkControlResult(results=views, changed=changed)

    async def create_schedule(self, spec: ScheduledJob, unchecked: bool = False) -> SpecWritten:
        """Write a new spec; `already_exists` if its id is taken."""
        await self._check(spec, unchecked)
        bucket = await self._bucket(names.KV_SCHEDULED_JOBS)
        try:
            revision = await bucket.create(spec.scheduled_job_id, to_json(spec))
        except KeyWrongLastSequenceError:
            raise ApiError(
                "already_exists",
                f"scheduled job {spec.scheduled_job_id!r} already exists; replace it instead",
            ) from None
        return _written(spec, revision, created=True)

    async def replace_schedule(
        self, scheduled_job_id: str, spec: ScheduledJob, unchecked: bool = False
    ) -> SpecWritten:
        """Write the spec under its id, created or replaced."""
        if spec.scheduled_job_id != scheduled_job_id:
            raise ApiError(
                "invalid_request",
                f"the body names scheduled job {spec.scheduled_job_id!r}, the path"
                f" {scheduled_job_id!r}",
            )
        await self._check(spec, unchecked)
        bucket = await self._bucket(names.KV_SCHEDULED_JOBS)
        existed = await _get(bucket, scheduled_job_id) is not None
        revision = await bucket.put(scheduled_job_id, to_json(spec))
        return _written(spec, revision, created=not existed)

    async def delete_schedule(self, scheduled_job_id: str) -> ControlResult:
        """The spec leaves KV; the recorder keeps the document and its runs, inactive."""
        bucket = await self._bucket(names.KV_SCHEDULED_JOBS)
        (result,) = await schedule_bucket.delete(bucket, [scheduled_job_id])
        return _single(result)

    async def _check(self, spec: ScheduledJob, unchecked: bool) -> None:
        if unchecked:
            return
        try:
            catalogue = await load_catalogue(self._js)
        except BucketNotFoundError:
            raise _not_provisioned(names.KV_SCRAPERS) from None
        try:
            check_job(catalogue, spec.scraper, spec.params)
        except NoRunnersError:
            raise NoRunnersError(no_runners_message("pass unchecked=true")) from None

    # --- what happens next, and who does it ----------------------------------------------

    async def preview(
        self, scheduled_job_id: str, count: int = 10, after: datetime | None = None
    ) -> Preview:
        """The next `count` fire times of the spec in KV (what the ticker follows)."""
        bucket = await self._bucket(names.KV_SCHEDULED_JOBS)
        value = await _get(bucket, scheduled_job_id)
        if value is None:
            raise unknown_scheduled_job(scheduled_job_id)
        try:
            spec = ScheduledJob.model_validate_json(value)
        except ValidationError:
            raise ApiError(
                "invalid_state", f"KV holds no valid spec for {scheduled_job_id!r}"
            ) from None
        remaining = await self._runs_left(spec)
        times: list[datetime] = []
        moment = after or self._clock.now()
        left = remaining
        while len(times) < count:
            slot = next_fire_after(spec, moment, runs_left=left)
            if slot is None:
                break
            times.append(slot)
            moment = slot
            left = None if left is None else left - 1
        return Preview(
            scheduled_job_id=scheduled_job_id,
            status=spec.status.value,
            fires=spec.status is ScheduledJobStatus.ACTIVE,
            schedule=describe(spec),
            timezone=spec.timezone,
            next_fire_times=times,
            remaining_runs=remaining,
        )

    async def _runs_left(self, spec: ScheduledJob) -> int | None:
        """What `max_runs` still allows, by the count the ticker keeps in `ticker_state`
        (a value that is no state counts for nothing, as the ticker ignores it too)."""
        if spec.max_runs is None:
            return None
        value = await _get(await self._bucket(names.KV_TICKER_STATE), spec.scheduled_job_id)
        try:
            state = None if value is None else SlotState.from_json(value)
        except ValidationError:
            state = None
        return runs_left(spec, state)

    async def status(self) -> SchedulerStatus:
        """Who leads (as the tickers say: the API may not read the lease), how many specs
        the tickers follow, and the lag of every consumer."""
        tickers = await gather_ticker_statuses(self._client)
        leader = next((ticker for ticker in tickers if ticker.leading), None)
        schedules = await self._keys(names.KV_SCHEDULED_JOBS)
        lanes = [await self._lag(names.STREAM_JOBS, names.runner_consumer(p)) for p in Priority]
        recorder = [
            await self._lag(names.STREAM_EVENTS, names.RECORDER_EVENTS_CONSUMER),
            await self._lag(names.STREAM_ITEMS, names.RECORDER_ITEMS_CONSUMER),
        ]
        try:
            catalogue = await load_catalogue(self._js)
        except BucketNotFoundError:
            raise _not_provisioned(names.KV_SCRAPERS) from None
        scrapers = catalogue.names()
        return SchedulerStatus(
            leader=None if leader is None else leader.ticker_id,
            leader_since=None if leader is None else leader.leading_since,
            tickers=tickers,
            schedules_loaded=len(schedules),
            lanes=lanes,
            recorder=recorder,
            runners=sorted({catalogue[name].runner_id for name in scrapers}),
            scrapers=scrapers,
            at=self._clock.now(),
        )

    # --- JetStream helpers ---------------------------------------------------------------

    async def _bucket(self, name: str) -> KeyValue:
        if name not in self._buckets:
            try:
                self._buckets[name] = await self._js.key_value(name)
            except BucketNotFoundError:
                raise _not_provisioned(name) from None
        return self._buckets[name]

    async def _keys(self, bucket_name: str) -> list[str]:
        return list(await current_values(await self._bucket(bucket_name)))

    async def _lag(self, stream: str, consumer: str) -> ConsumerLag:
        try:
            info = await self._js.consumer_info(stream, consumer)
        except NotFoundError:
            raise ApiError(
                "not_provisioned",
                f"consumer {stream}/{consumer} does not exist; run `natscron provision`",
            ) from None
        return ConsumerLag(
            consumer=consumer,
            stream=stream,
            pending=info.num_pending or 0,
            ack_pending=info.num_ack_pending or 0,
            redelivered=info.num_redelivered or 0,
            waiting_pulls=info.num_waiting or 0,
        )


def merge_stats(docs: Iterable[Mapping[str, Any]]) -> Document:
    """`job_stats` documents added up: counters only grow, so periods merge by adding."""
    merged: Document = dict.fromkeys(SUMMED, 0)
    buckets: dict[str, int] = {}
    for doc in docs:
        for name in SUMMED:
            merged[name] += doc.get(name, 0)
        for index, count in doc.get("duration_buckets", {}).items():
            buckets[index] = buckets.get(index, 0) + count
        for name, pick in (("duration_ms_min", min), ("duration_ms_max", max)):
            value = doc.get(name)
            if value is not None:
                merged[name] = value if merged.get(name) is None else pick(merged[name], value)
    merged["duration_buckets"] = buckets
    return merged


def _label_query(selector: str) -> Document:
    query: Document = {}
    for key, value in schedule_bucket.parse_selector(selector).items():
        if not re.fullmatch(SAFE_LABEL_KEY, key):
            raise ApiError(
                "invalid_request",
                f"label key {key!r} cannot be selected here: letters, digits, '_' and '-' only",
            )
        query[f"labels.{key}"] = value
    return query


async def _get(bucket: KeyValue, key: str) -> bytes | None:
    try:
        entry = await bucket.get(key)
    except (KeyNotFoundError, KeyDeletedError):
        return None
    return entry.value


def _view(result: schedule_bucket.ControlResult) -> ControlResult:
    return ControlResult(
        scheduled_job_id=result.scheduled_job_id, outcome=result.outcome, message=result.message
    )


def _single(result: schedule_bucket.ControlResult) -> ControlResult:
    if result.outcome == "not_found":
        raise unknown_scheduled_job(result.scheduled_job_id)
    if result.outcome == "unchanged":
        raise ApiError(
            "invalid_state", f"scheduled job {result.scheduled_job_id!r} is {result.message}"
        )
    return _view(result)


def _written(spec: ScheduledJob, revision: int, created: bool) -> SpecWritten:
    return SpecWritten(
        scheduled_job=spec.model_dump(mode="json"), created=created, revision=revision
    )


def _not_provisioned(bucket: str) -> ApiError:
    return ApiError(
        "not_provisioned", f"KV bucket {bucket} does not exist; run `natscron provision`"
    )
