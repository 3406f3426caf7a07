"""Decision records: why a scheduled job's slot did not fire as scheduled, when only the
process that decided knows it.

Some reasons are functions of the spec alone (a slot outside the active hours, moved by a DST
gap or by jitter, the skipped second pass of a fold, outside `start_at`/`end_at`):
`natscron_shared.timing.slot_fates` works them out again for any range, and a run fired away
from its nominal instant says so itself (`RunRequest.moved_by`). The others are facts of the
moment, and each is published once, on `decisions.<scheduled_job_id>` (stream DECISIONS, kept
as long as EVENTS):

- the ticker: missed slots merged or dropped by catch-up, slots skipped while paused, slots
  after `max_runs` was used up; a chained run fired, held or dropped (about the child);
- the runner: a run ended `skipped` by the overlap policy.

A record covers the slots `s` with `after < s <= until` (`until` None: every later slot, until
a record with the same key closes it), one slot (`slot`), or one run (`job_id`). The recorder
keeps one document per `key` (every field but `until`, `slots`, `note` and `at`) and merges
every record of it
by its set fields, so a pause is published open when it starts and again, closed, when it
ends. `explain` joins them with the runs and the slot maths.
"""

from datetime import datetime
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from natscron_shared.contract import names
from natscron_shared.contract.models import MAX_NOTE_CHARS


class DecisionKind(StrEnum):
    CATCHUP_MERGED = "catchup_merged"
    """Missed slots (downtime, a failover) merged into the one run catch-up `latest` fired
    for the newest of them (`job_id`)."""
    CATCHUP_DROPPED = "catchup_dropped"
    """Missed slots left unfired: catch-up `none` once past `misfire_grace_seconds`, or
    `all` beyond the most it fires at once."""
    PAUSED = "paused"
    """Slots skipped while the schedule was paused (or inactive); `note`: the pause's
    reason."""
    MAX_RUNS_REACHED = "max_runs_reached"
    """Slots after the last run `max_runs` allowed (`job_id`)."""
    OVERLAP_SKIPPED = "overlap_skipped"
    """A slot's run (`job_id`) ended `skipped` by the overlap policy, while the run
    `cause_job_id` held the schedule."""
    CHAIN_FIRED = "chain_fired"
    """A chained run (`job_id`) started by the end of a parent's run (`cause_job_id`, the
    last one it waited for); `note`: every parent run it ran after."""
    CHAIN_HELD = "chain_held"
    """The end of a parent's run (`cause_job_id`) started no chained run: its status is not
    the one the child runs after, or another parent has yet to run; `note` says which."""
    CHAIN_DROPPED = "chain_dropped"
    """The chained run (`job_id`) the end of a parent's run (`cause_job_id`) completed was
    dropped: the child was paused or inactive; `note` says which."""


class Decision(BaseModel):
    """One decision about a scheduled job's slots or runs (the module's docstring)."""

    model_config = ConfigDict(frozen=True)

    scheduled_job_id: str
    kind: DecisionKind
    at: AwareDatetime = Field(description="when it was decided")
    after: AwareDatetime | None = Field(
        default=None, description="the slots it covers come after this instant (excluded)"
    )
    until: AwareDatetime | None = Field(
        default=None,
        description="...up to this one (included); null with `after`: every later slot",
    )
    slot: AwareDatetime | None = Field(default=None, description="the one slot it is about")
    slots: int | None = Field(
        default=None, ge=0, description="how many slots it covers, if counted"
    )
    job_id: str | None = Field(
        default=None,
        description="the run it is about: merged into, the last one max_runs allowed, skipped,"
        " chained or dropped",
    )
    cause_job_id: str | None = Field(
        default=None, description="the run that caused it: the one holding an overlap, a parent"
    )
    note: str | None = Field(default=None, max_length=MAX_NOTE_CHARS)

    @property
    def subject(self) -> str:
        return names.decision_subject(self.scheduled_job_id)

    @property
    def key(self) -> str:
        """The document it is merged into: the same decision, however often published."""
        parts = (_moment(self.after), _moment(self.slot), self.job_id, self.cause_job_id)
        return ":".join((self.scheduled_job_id, self.kind.value, *(p or "" for p in parts)))

    @property
    def msg_id(self) -> str:
        """Its `Nats-Msg-Id`: a record published again (a retry, two tickers) is stored
        once, while the record closing an open window is a new one."""
        return f"{self.key}:{_moment(self.until)}"


def _moment(moment: datetime | None) -> str:
    return "" if moment is None else f"{moment.timestamp():.6f}"
