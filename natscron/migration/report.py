"""What a migration did, or in a dry run would do: one line per source schedule and run."""

from collections import Counter
from enum import StrEnum

from pydantic import BaseModel, computed_field


class DefinitionOutcome(StrEnum):
    CREATED = "created"
    """Written to KV `scheduled_jobs` (in a dry run: would be)."""
    UNCHANGED = "unchanged"
    """KV already holds the same spec."""
    UPDATED = "updated"
    """KV held a different spec, replaced because `force` was given."""
    CONFLICT = "conflict"
    """KV holds a different spec (edited in natscron?); left as it is."""
    GONE = "gone"
    """Migrated before, but no longer in KV (deleted in natscron?); not recreated."""
    SUPERSEDED = "superseded"
    """A legacy template the source moved to its `scheduled_jobs`: that one is migrated."""
    SKIPPED = "skipped"
    """Cannot be converted, or its kind is unmapped; the message says why."""


class RunOutcome(StrEnum):
    LINKED = "linked"
    """Written to natscron's `jobs` (in a dry run: would be)."""
    UNCHANGED = "unchanged"
    """natscron's `jobs` already holds it."""
    ALREADY_MIGRATED = "already_migrated"
    """Migrated by an earlier run: marked so in the source, or counted in natscron."""
    SKIPPED = "skipped"
    """Cannot be linked; the message says why."""


class DefinitionResult(BaseModel):
    source: str
    """`<store>:<collection or table>` it was read from."""
    legacy_id: str
    legacy_job_id: str | None
    kind: str | None
    """Its source kind (`natscron.migration.kinds`), when it could be read."""
    scheduled_job_id: str | None
    outcome: DefinitionOutcome
    message: str
    notes: list[str] = []
    """Assumptions made while converting (a default time zone, a disabled job paused)."""


class RunResult(BaseModel):
    source: str
    legacy_id: str
    legacy_job_id: str | None
    job_id: str | None
    scheduled_job_id: str | None
    outcome: RunOutcome
    message: str


class MigrationReport(BaseModel):
    dry_run: bool
    layout: str
    """The source's layout: `mongodb`, `postgresql-schedules` or `postgresql-crawler`."""
    legacy_database: str
    notes: list[str] = []
    """Assumptions that hold for the whole source (the time zone of a PostgreSQL one)."""
    unmapped_kinds: dict[str, int] = {}
    """Schedules by source kind that no scraper is mapped for (left out)."""
    definitions: list[DefinitionResult] = []
    runs: list[RunResult] = []
    unlinked_runs: int = 0
    """Source runs that reference no schedule (one-time jobs): left alone."""
    runs_counted: int = 0
    """Migrated runs added to their schedule's run history and statistics by this migration
    (in a dry run: that would be); each run counts once, whatever the number of migrations."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def definition_counts(self) -> dict[str, int]:
        counts = Counter(result.outcome.value for result in self.definitions)
        return {"found": len(self.definitions)} | {
            o.value: counts[o.value] for o in DefinitionOutcome
        }

    @computed_field  # type: ignore[prop-decorator]
    @property
    def run_counts(self) -> dict[str, int]:
        counts = Counter(result.outcome for result in self.runs)
        return {"found": len(self.runs)} | {o.value: counts[o] for o in RunOutcome}
