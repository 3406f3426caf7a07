"""The states of the contract. Values are the strings stored in NATS and MongoDB."""

from enum import StrEnum


class ScheduledJobStatus(StrEnum):
    """Whether a scheduled job fires: only `active` ones do."""

    ACTIVE = "active"
    INACTIVE = "inactive"
    PAUSED = "paused"


class Priority(StrEnum):
    """The runner lane; `immediate` is always pulled before `normal`."""

    IMMEDIATE = "immediate"
    NORMAL = "normal"


class ConcurrencyPolicy(StrEnum):
    """What to do when a run is due while the previous one still runs."""

    ALLOW = "allow"
    FORBID = "forbid"
    REPLACE = "replace"


class Catchup(StrEnum):
    """Which missed slots to fire after downtime: the newest, all, or none."""

    LATEST = "latest"
    ALL = "all"
    NONE = "none"


class IntervalAnchor(StrEnum):
    """What an interval counts its periods from."""

    START = "start"
    """`start_at`, or the Unix epoch without one: slots on a fixed grid."""
    LAST_RUN = "last_run"
    """The end of the schedule's previous scheduled run: a period after it finished."""


class Trigger(StrEnum):
    """Why a job exists."""

    SCHEDULED = "scheduled"
    TRIGGERED = "triggered"
    RETRY = "retry"
    ADHOC = "adhoc"
    BACKFILL = "backfill"
    """A past slot published on request (`jobs.backfill`); its job id is the slot's."""
    CHAIN = "chain"
    """Run after its parents' runs ended (`after`); its job id is made of theirs."""


class JobStatus(StrEnum):
    """Execution status of one job; `rank` orders them so status never moves back."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"

    @property
    def rank(self) -> int:
        return {JobStatus.PENDING: 0, JobStatus.RUNNING: 1}.get(self, 2)

    @property
    def is_terminal(self) -> bool:
        return self.rank == 2

    @property
    def is_finished_run(self) -> bool:
        """Counts in `run_count`: the run happened (a skipped job never ran)."""
        return self in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


FINISHED_RUN_STATUSES = tuple(s.value for s in JobStatus if s.is_finished_run)


class ChainOn(StrEnum):
    """Which final runs of a parent a child runs after (`after: [{on: ...}]`)."""

    SUCCESS = "success"
    """The parent's run completed."""
    FAILURE = "failure"
    """It failed, its retries used up."""
    COMPLETION = "completion"
    """It ran to an end, completed or failed: a cancelled or skipped run chains nothing."""

    def qualifies(self, status: JobStatus) -> bool:
        if self is ChainOn.SUCCESS:
            return status is JobStatus.COMPLETED
        if self is ChainOn.FAILURE:
            return status is JobStatus.FAILED
        return status in (JobStatus.COMPLETED, JobStatus.FAILED)
