"""The specs in KV `scheduled_jobs`, where natscron keeps its truth about schedules:
written (checked as `natscron apply` checks them), paused and resumed (compare-and-set,
`natscron_shared.nats.schedule_bucket`), deleted, and their next fire times previewed.
The recorder mirrors them into MongoDB; nothing here writes MongoDB."""

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal

from nats.js.errors import KeyWrongLastSequenceError
from nats.js.kv import KeyValue
from pydantic import ValidationError

from natscron_api.describe import describe
from natscron_api.errors import ApiError, unknown_scheduled_job
from natscron_api.live_state import LiveState
from natscron_api.views import (
    BulkControlResult,
    ControlResult,
    FireTime,
    Preview,
    SpecView,
    SpecWritten,
)
from natscron_shared.contract import names
from natscron_shared.contract.catalogue import NoRunnersError, check_job, no_runners_message
from natscron_shared.contract.chain_graph import check_chains
from natscron_shared.contract.enums import ScheduledJobStatus
from natscron_shared.contract.errors import InvalidChainError
from natscron_shared.contract.last_runs import LastRun, slots_from_last_run
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.contract.ticker_state import SlotState, runs_left
from natscron_shared.nats import schedule_bucket
from natscron_shared.nats.connection import to_json
from natscron_shared.runtime.clock import Clock
from natscron_shared.timing.schedule import SlotSpec, next_fire_after
from natscron_shared.timing.zones import zone_named

Action = Literal["pause", "resume", "delete"]


class Specs:
    def __init__(self, live: LiveState, clock: Clock) -> None:
        self._live = live
        self._clock = clock

    async def pause(self, scheduled_job_id: str, reason: str | None) -> ControlResult:
        """An active job becomes paused; any other status is `invalid_state`."""
        bucket = await self._live.bucket(names.KV_SCHEDULED_JOBS)
        (result,) = await schedule_bucket.pause(
            bucket, [scheduled_job_id], reason, self._clock.now()
        )
        return _single(result)

    async def resume(self, scheduled_job_id: str) -> ControlResult:
        bucket = await self._live.bucket(names.KV_SCHEDULED_JOBS)
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
        bucket = await self._live.bucket(names.KV_SCHEDULED_JOBS)
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

    async def create(self, spec: ScheduledJob, unchecked: bool = False) -> SpecWritten:
        """Write a new spec, with its runner pool; `already_exists` if its id is taken,
        `invalid_chain` if it runs after an unknown schedule or closes a chain."""
        spec = await self._checked(spec, unchecked)
        bucket = await self._live.bucket(names.KV_SCHEDULED_JOBS)
        await _check_chain(bucket, spec)
        try:
            revision = await bucket.create(spec.scheduled_job_id, to_json(spec))
        except KeyWrongLastSequenceError:
            raise ApiError(
                "already_exists",
                f"scheduled job {spec.scheduled_job_id!r} already exists; replace it instead",
            ) from None
        return _written(spec, revision, created=True)

    async def replace(
        self, scheduled_job_id: str, spec: ScheduledJob, unchecked: bool = False
    ) -> SpecWritten:
        """Write the spec under its id, created or replaced, with its runner pool."""
        if spec.scheduled_job_id != scheduled_job_id:
            raise ApiError(
                "invalid_request",
                f"the body names scheduled job {spec.scheduled_job_id!r}, the path"
                f" {scheduled_job_id!r}",
            )
        current = await self._live.get(names.KV_SCHEDULED_JOBS, scheduled_job_id)
        spec = await self._checked(spec, unchecked, current)
        bucket = await self._live.bucket(names.KV_SCHEDULED_JOBS)
        await _check_chain(bucket, spec)
        existed = current is not None
        revision = await bucket.put(scheduled_job_id, to_json(spec))
        return _written(spec, revision, created=not existed)

    async def delete(self, scheduled_job_id: str) -> ControlResult:
        """The spec leaves KV; the recorder keeps the document and its runs, inactive."""
        bucket = await self._live.bucket(names.KV_SCHEDULED_JOBS)
        (result,) = await schedule_bucket.delete(bucket, [scheduled_job_id])
        return _single(result)

    async def current(self, scheduled_job_id: str) -> SpecView:
        """The spec KV holds now, and its revision."""
        entry = await self._live.entry(names.KV_SCHEDULED_JOBS, scheduled_job_id)
        if entry is None:
            raise unknown_scheduled_job(scheduled_job_id)
        value, revision = entry
        spec = _valid_spec(scheduled_job_id, value)
        return SpecView(scheduled_job=spec.model_dump(mode="json"), revision=revision)

    async def preview(
        self, scheduled_job_id: str, count: int = 10, after: datetime | None = None
    ) -> Preview:
        """The next `count` fire times of the spec in KV (what the ticker follows). An
        interval `from: last_run` has one: a period after the end of its previous run, as
        the ticker reckons it, from KV `ticker_state` and `last_runs`."""
        value = await self._live.get(names.KV_SCHEDULED_JOBS, scheduled_job_id)
        if value is None:
            raise unknown_scheduled_job(scheduled_job_id)
        spec = _valid_spec(scheduled_job_id, value)
        state = await self._state(spec)
        remaining = runs_left(spec, state)
        slots: SlotSpec = spec
        if spec.counts_from_last_run:
            slots = await self._slots_from_last_run(spec, state)
            count = min(count, 1)
        times: list[datetime] = []
        moment = after or self._clock.now()
        left = remaining
        while len(times) < count:
            slot = next_fire_after(slots, moment, runs_left=left)
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
            local_fire_times=_local(times, spec.timezone, after or self._clock.now()),
        )

    async def _state(self, spec: ScheduledJob) -> SlotState | None:
        """What the ticker keeps of the spec in `ticker_state`, when the preview needs it:
        the runs `max_runs` still allows, the last slot fired (a value that is no state
        counts for nothing, as the ticker ignores it too)."""
        if spec.max_runs is None and not spec.counts_from_last_run:
            return None
        value = await self._live.get(names.KV_TICKER_STATE, spec.scheduled_job_id)
        try:
            return None if value is None else SlotState.from_json(value)
        except ValidationError:
            return None

    async def _slots_from_last_run(self, spec: ScheduledJob, state: SlotState | None) -> SlotSpec:
        """The slots the ticker fires an interval `from: last_run` by (an unreadable
        `last_runs` value counts as none, as for the ticker)."""
        scheduled_job_id = spec.scheduled_job_id
        value = await self._live.get(names.KV_LAST_RUNS, scheduled_job_id)
        try:
            last_run = None if value is None else LastRun.from_json(value)
        except ValidationError:
            last_run = None
        stored_at = await self._live.stored_at(names.KV_SCHEDULED_JOBS, scheduled_job_id)
        return slots_from_last_run(
            spec,
            None if state is None else state.last_fired_slot,
            last_run,
            stored_at or self._clock.now(),
        )

    async def _checked(
        self, spec: ScheduledJob, unchecked: bool, current: bytes | None = None
    ) -> ScheduledJob:
        """The spec with the pool it runs in, as `natscron apply` writes it: checked, the one
        its scraper is offered in unless it names one; unchecked, the one it had in
        `current` (its value in KV) unless it names one."""
        if unchecked:
            if spec.pool is not None or current is None:
                return spec
            try:
                had = ScheduledJob.model_validate_json(current).pool
            except ValidationError:
                return spec
            return spec.model_copy(update={"pool": had})
        catalogue = await self._live.catalogue()
        try:
            pool = check_job(catalogue, spec.scraper, spec.params, spec.pool)
        except NoRunnersError:
            raise NoRunnersError(no_runners_message("pass unchecked=true")) from None
        return spec.model_copy(update={"pool": pool})


def _valid_spec(scheduled_job_id: str, value: bytes) -> ScheduledJob:
    try:
        return ScheduledJob.model_validate_json(value)
    except ValidationError:
        message = f"KV holds no valid spec for {scheduled_job_id!r}"
        raise ApiError("invalid_state", message) from None


def _local(times: list[datetime], timezone: str, start: datetime) -> list[FireTime]:
    """`times` in the zone, each marked where its UTC offset differs from the one before
    (the first from the offset at `start`): a daylight-saving change lies between."""
    zone = zone_named(timezone)
    previous = start.astimezone(zone).utcoffset() or timedelta(0)
    local = []
    for moment in times:
        wall = moment.astimezone(zone)
        offset = wall.utcoffset() or timedelta(0)
        local.append(
            FireTime(
                at=moment,
                local=wall.isoformat(),
                utc_offset=_offset_text(offset),
                offset_changed=offset != previous,
            )
        )
        previous = offset
    return local


def _offset_text(offset: timedelta) -> str:
    minutes = round(offset.total_seconds() / 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


async def _check_chain(bucket: KeyValue, spec: ScheduledJob) -> None:
    """Only a spec that runs after others can break a chain by being written (one without
    `after` removes links, never adds them): only then is every spec read."""
    if spec.after:
        check_chains(await schedule_bucket.stored_chains(bucket), [spec])


def _view(result: schedule_bucket.ControlResult) -> ControlResult:
    return ControlResult(
        scheduled_job_id=result.scheduled_job_id, outcome=result.outcome, message=result.message
    )


def _single(result: schedule_bucket.ControlResult) -> ControlResult:
    if result.outcome == "not_found":
        raise unknown_scheduled_job(result.scheduled_job_id)
    if result.outcome == "refused":
        raise InvalidChainError(result.message)
    if result.outcome == "unchanged":
        raise ApiError(
            "invalid_state", f"scheduled job {result.scheduled_job_id!r} is {result.message}"
        )
    return _view(result)


def _written(spec: ScheduledJob, revision: int, created: bool) -> SpecWritten:
    return SpecWritten(
        scheduled_job=spec.model_dump(mode="json"), created=created, revision=revision
    )
