"""What the migration needs of a source store: its schedules, its runs, and a way to mark
what was migrated where the store keeps such marks."""

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Protocol

from natscron.migration.records import Definition, Run


class Source(Protocol):
    @property
    def layout(self) -> str:
        """Which kind of store it is, for the report: `mongodb`, `postgresql-schedules`..."""

    @property
    def database(self) -> str: ...

    def definitions(self) -> AsyncIterator[Definition]:
        """Every schedule, in a stable order."""

    def runs(self) -> AsyncIterator[Run]:
        """Every run (of a schedule or not), in a stable order."""

    async def mark_definition(
        self, definition: Definition, scheduled_job_id: str, now: datetime
    ) -> None:
        """Record in the source that the schedule is in natscron (a no-op where the source
        is only read)."""

    async def mark_run(self, run: Run, job_id: str, scheduled_job_id: str, now: datetime) -> None:
        """Record in the source that the run is in natscron (a no-op where only read)."""
