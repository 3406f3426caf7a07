"""Fields the seeds' frontends read under the names the seeds gave them, where natscron keeps
the same value elsewhere: derived on the way out (pydantic computed fields, so the OpenAPI
document shows them), never stored twice. docs/compatibility.md lists them.

Each mixin reads fields of the view it is mixed into; they are declared for the type checker
only, so pydantic takes them from the view itself.
"""

from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, computed_field

if TYPE_CHECKING:
    from natscron_api.views import ExecutionView, StatsSummary


class ListingFields:
    """Seed 000's and seed 001's top-level `locations`, `listing_type` and `limit` of a
    scheduled job and of a run, which natscron keeps in `params` (the scraper's); null when
    `params` has none of that name and type."""

    if TYPE_CHECKING:
        params: dict[str, Any]

    @computed_field(description="`params.locations`, seed 001's top-level field")  # type: ignore[prop-decorator]
    @property
    def locations(self) -> list[str] | None:
        value = self.params.get("locations")
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return value
        return None

    @computed_field(description="`params.listing_type`, seed 001's top-level field")  # type: ignore[prop-decorator]
    @property
    def listing_type(self) -> str | None:
        value = self.params.get("listing_type")
        return value if isinstance(value, str) else None

    @computed_field(description="`params.limit`, seed 000's top-level field")  # type: ignore[prop-decorator]
    @property
    def limit(self) -> int | None:
        value = self.params.get("limit")
        return value if isinstance(value, int) and not isinstance(value, bool) else None


class JobStatsFields:
    """Seed 004's `JobStatsResponse` names, from the all-time counters of finished runs and
    the newest run."""

    if TYPE_CHECKING:
        all_time: StatsSummary
        last_execution: ExecutionView | None

    @computed_field(description="`all_time.runs`: finished runs")  # type: ignore[prop-decorator]
    @property
    def total_executions(self) -> int:
        return self.all_time.runs

    @computed_field(description="`all_time.completed`")  # type: ignore[prop-decorator]
    @property
    def successful_runs(self) -> int:
        return self.all_time.completed

    @computed_field(description="`all_time.failed`")  # type: ignore[prop-decorator]
    @property
    def failed_runs(self) -> int:
        return self.all_time.failed

    @computed_field(description="`all_time.duration_ms_mean`; null before a timed run")  # type: ignore[prop-decorator]
    @property
    def average_duration_ms(self) -> float | None:
        return self.all_time.duration_ms_mean

    @computed_field(description="`all_time.success_rate`, 0 to 1; null before a run")  # type: ignore[prop-decorator]
    @property
    def success_rate(self) -> float | None:
        return self.all_time.success_rate

    @computed_field(description="`last_execution.started_at`")  # type: ignore[prop-decorator]
    @property
    def last_execution_at(self) -> datetime | None:
        return None if self.last_execution is None else self.last_execution.started_at


class ExecutionTotals(BaseModel):
    """Seed 004's `executions` of the scheduler metrics."""

    total: int = Field(description="finished runs, all time")
    average_duration_ms: float | None
    success_rate: float | None = Field(description="0 to 1; null before a run")


class SchedulerMetricsFields:
    """Seed 004's `SchedulerMetricsResponse.executions`, from the all-time statistics."""

    if TYPE_CHECKING:
        all_time: StatsSummary

    @computed_field(description="seed 004's execution totals: `all_time` by its names")  # type: ignore[prop-decorator]
    @property
    def executions(self) -> ExecutionTotals:
        return ExecutionTotals(
            total=self.all_time.runs,
            average_duration_ms=self.all_time.duration_ms_mean,
            success_rate=self.all_time.success_rate,
        )
