"""`explain`: why each slot of a scheduled job in a range fired, moved, merged or did not run.

The spec is the one in KV now (what the ticker follows), at its current revision: a range
from before that revision was stored is explained with it all the same, and the reply says
so (`notes`). The runs and decision records are the recorder's, under its retention rules:
a slot older than what is kept reads `no_record`. A range holds at most
`MAX_EXPLAINED_SLOTS` nominal slots, so a reply stays well within a NATS message.
"""

from collections import Counter
from datetime import datetime, timedelta

from pydantic import ValidationError
from pymongo.asynchronous.database import AsyncDatabase

from natscron_api.describe import describe
from natscron_api.errors import ApiError, unknown_scheduled_job
from natscron_api.live_state import LiveState
from natscron_api.timeline import Explanation, Recorded, build_entries
from natscron_shared.contract import names
from natscron_shared.contract.enums import Trigger
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.contract.storage import DecisionDocument, Document, JobDocument
from natscron_shared.runtime.clock import Clock
from natscron_shared.runtime.mongo import decisions, jobs
from natscron_shared.timing.slot_fates import NominalSlot, TooManySlotsError, nominal_slots

MAX_EXPLAINED_SLOTS = 1000
MAX_OTHER_RUNS = 1000
MAX_DECISIONS = 5000
DEFAULT_SPAN = timedelta(days=1)
RUN_FIELDS = {
    "_id": 0,
    **dict.fromkeys(
        (
            "job_id",
            "trigger",
            "status",
            "scheduled_for",
            "nominal_at",
            "created_at",
            "started_at",
            "completed_at",
            "runner_id",
            "error_message",
            "retry_of",
            "chained_from",
        ),
        1,
    ),
}


class Explain:
    def __init__(self, live: LiveState, db: AsyncDatabase[Document], clock: Clock) -> None:
        self._live = live
        self._db = db
        self._clock = clock

    async def explain(
        self, scheduled_job_id: str, start: datetime | None, end: datetime | None
    ) -> Explanation:
        """The slots whose nominal instant lies in `[start, end)`: by default the day up to
        now (`end`: now; `start`: a day before `end`)."""
        now = self._clock.now()
        end = end or now
        start = start or end - DEFAULT_SPAN
        if end <= start:
            raise ApiError("invalid_range", f"end ({end}) must be after start ({start})")
        spec, revision, stored_at = await self._spec(scheduled_job_id)
        notes = []
        if stored_at is not None and stored_at > start:
            notes.append(
                f"the spec explained (revision {revision}) was stored at {stored_at.isoformat()},"
                " inside the range: slots before then are explained with it, whatever the spec"
                " was when they were due"
            )
        slots = self._slots(spec, start, end, notes)
        recorded = await self._recorded(spec, start, end, notes)
        entries, other_runs, other_decisions = build_entries(slots, recorded, spec.zone, now)
        return Explanation(
            scheduled_job_id=scheduled_job_id,
            timezone=spec.timezone,
            schedule=describe(spec) if _has_slots(spec) else None,
            start=start,
            end=end,
            now=now,
            spec_revision=revision,
            spec_stored_at=stored_at,
            notes=notes,
            counts=Counter(entry.outcome for entry in entries),
            slots=entries,
            other_runs=other_runs,
            other_decisions=other_decisions,
        )

    async def _spec(self, scheduled_job_id: str) -> tuple[ScheduledJob, int, datetime | None]:
        entry = await self._live.entry(names.KV_SCHEDULED_JOBS, scheduled_job_id)
        if entry is None:
            raise unknown_scheduled_job(scheduled_job_id)
        value, revision = entry
        try:
            spec = ScheduledJob.model_validate_json(value)
        except ValidationError:
            raise ApiError(
                "invalid_state", f"KV holds no valid spec for {scheduled_job_id!r}"
            ) from None
        stored_at = await self._live.stored_at(names.KV_SCHEDULED_JOBS, scheduled_job_id)
        return spec, revision, stored_at

    def _slots(
        self, spec: ScheduledJob, start: datetime, end: datetime, notes: list[str]
    ) -> list[NominalSlot]:
        if spec.counts_from_last_run:
            notes.append(
                "an interval from: last_run has no slots of its own: each follows the end of"
                " the run before it, so its runs are listed apart"
            )
            return []
        if not _has_slots(spec):
            return []
        try:
            return nominal_slots(spec, start, end, MAX_EXPLAINED_SLOTS)
        except TooManySlotsError as exc:
            raise ApiError(
                "too_many_slots", f"{exc} (at most {exc.limit}): narrow the range"
            ) from None

    async def _recorded(
        self, spec: ScheduledJob, start: datetime, end: datetime, notes: list[str]
    ) -> Recorded:
        """The runs of the slots in the range (their jitter may carry them past its end),
        the other runs made in it, and the decisions about any of it."""
        scheduled_job_id = spec.scheduled_job_id
        late_end = end + timedelta(seconds=spec.jitter_seconds)
        slot_runs: list[JobDocument] = await (
            jobs(self._db)
            .find(
                {
                    "scheduled_job_id": scheduled_job_id,
                    "scheduled_for": {"$gte": start, "$lt": late_end},
                },
                RUN_FIELDS,
            )
            .sort("scheduled_for", 1)
            .limit(2 * MAX_EXPLAINED_SLOTS)
            .to_list()
        )
        made = await (
            jobs(self._db)
            .find(
                {
                    "scheduled_job_id": scheduled_job_id,
                    "created_at": {"$gte": start, "$lt": end},
                    "trigger": {"$ne": Trigger.SCHEDULED.value},
                },
                RUN_FIELDS,
            )
            .sort("created_at", 1)
            .limit(MAX_OTHER_RUNS + 1)
            .to_list()
        )
        if len(made) > MAX_OTHER_RUNS:
            notes.append(f"only the first {MAX_OTHER_RUNS} runs besides the slots' are listed")
        runs = {run["job_id"]: run for run in [*slot_runs, *made[:MAX_OTHER_RUNS]]}
        found: list[DecisionDocument] = await (
            decisions(self._db)
            .find(
                {
                    "scheduled_job_id": scheduled_job_id,
                    "ends_at": {"$not": {"$lt": start}},
                    "starts_at": {"$lt": late_end},
                }
            )
            .sort("starts_at", 1)
            .limit(MAX_DECISIONS)
            .to_list()
        )
        if len(found) == MAX_DECISIONS:
            notes.append(f"only the first {MAX_DECISIONS} decision records are used")
        return Recorded(runs=list(runs.values()), decisions=found)


def _has_slots(spec: ScheduledJob) -> bool:
    """Whether the spec has slots of its own (a cron, an interval or a `run_at`)."""
    return any(
        when is not None for when in (spec.cron_expression, spec.interval_period, spec.run_at)
    )
