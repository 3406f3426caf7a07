"""What a migration did, or in a dry run would do: one line per legacy document."""

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
    SKIPPED = "skipped"
    """Cannot be converted; the message says why."""


class RunOutcome(StrEnum):
    LINKED = "linked"
    """Written to natscron's `jobs` (in a dry run: would be)."""
    UNCHANGED = "unchanged"
    """natscron's `jobs` already holds it."""
    ALREADY_MIGRATED = "already_migrated"
    """Marked as migrated in the legacy collection by an earlier run."""
    SKIPPED = "skipped"
    """Cannot be linked; the message says why."""


class DefinitionResult(BaseModel):
    legacy_id: str
    legacy_job_id: str | None
    scheduled_job_id: str | None
    outcome: DefinitionOutcome
    message: str
    notes: list[str] = []
    """Assumptions made while converting (a default time zone, a disabled job paused)."""


class RunResult(BaseModel):
    legacy_id: str
    legacy_job_id: str | None
    job_id: str | None
    scheduled_job_id: str | None
    outcome: RunOutcome
    message: str


class MigrationReport(BaseModel):
    dry_run: bool
    legacy_database: str
    definitions: list[DefinitionResult] = []
    runs: list[RunResult] = []
    unlinked_runs: int = 0
    """Legacy runs that reference no recurring definition (one-time jobs): left alone."""

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
