"""The scheduled-job spec: what users apply, what KV `scheduled_jobs` holds."""

from datetime import datetime, time, timedelta
from typing import Annotated, Any, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from natscron_shared.cron import check_fires_within, validate_cron
from natscron_shared.enums import Catchup, ConcurrencyPolicy, Priority, ScheduledJobStatus
from natscron_shared.zones import zone_named

# Ids become KV keys and NATS subject tokens: no dots, spaces or wildcards.
Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,100}$")]
MAX_RETRY_BACKOFF_SECONDS = 3600.0


class ActiveHours(BaseModel):
    """A daily window, in the schedule's time zone, outside which slots are skipped.

    `end` before `start` means the window crosses midnight (22:00-06:00).
    Weekdays are ISO numbers of the day the window starts on: 1 = Monday ... 7 = Sunday.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: time
    end: time
    weekdays: tuple[Annotated[int, Field(ge=1, le=7)], ...] = Field(
        default=(1, 2, 3, 4, 5, 6, 7), min_length=1
    )

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if self.start == self.end:
            raise ValueError("active_hours start and end are equal: the window would be empty")
        return self

    def contains(self, local: datetime) -> bool:
        moment = local.time().replace(tzinfo=None)
        if self.start <= self.end:
            return self.start <= moment < self.end and local.isoweekday() in self.weekdays
        if moment >= self.start:
            return local.isoweekday() in self.weekdays
        if moment < self.end:
            return (local.isoweekday() - 2) % 7 + 1 in self.weekdays
        return False

    def next_opening(self, local: datetime) -> datetime:
        """The first moment after `local` (wall time in its zone) at which a window opens."""
        for offset in range(8):
            day = local.date() + timedelta(days=offset)
            opening = datetime.combine(day, self.start, tzinfo=local.tzinfo)
            if opening > local and day.isoweekday() in self.weekdays:
                return opening
        raise AssertionError("a week always has an opening: weekdays is not empty")

    def last_closing(self, local: datetime) -> datetime:
        """The last moment at or before `local` at which a window closed."""
        overnight = timedelta(days=1 if self.end < self.start else 0)
        for offset in range(9):
            day = local.date() - timedelta(days=offset)
            closing = datetime.combine(day + overnight, self.end, tzinfo=local.tzinfo)
            if closing <= local and day.isoweekday() in self.weekdays:
                return closing
        raise AssertionError("a week always has a closing: weekdays is not empty")


class ScheduledJob(BaseModel):
    """One recurring (or one-time) scrape: exactly one of cron, interval, run_at."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scheduled_job_id: Identifier
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    status: ScheduledJobStatus = ScheduledJobStatus.ACTIVE

    cron_expression: str | None = None
    interval_minutes: float | None = Field(default=None, gt=0)
    run_at: AwareDatetime | None = None
    timezone: str = "UTC"
    active_hours: ActiveHours | None = None

    scraper: Identifier
    params: dict[str, Any] = Field(default_factory=dict)

    priority: Priority = Priority.NORMAL
    concurrency_policy: ConcurrencyPolicy = ConcurrencyPolicy.ALLOW
    max_retries: int = Field(default=0, ge=0, le=100)
    retry_backoff_seconds: float = Field(default=30.0, ge=0, le=MAX_RETRY_BACKOFF_SECONDS)
    timeout_seconds: float = Field(default=3600.0, gt=0)
    misfire_grace_seconds: float = Field(default=300.0, ge=0)
    catchup: Catchup = Catchup.LATEST
    failure_threshold: int | None = Field(default=None, ge=1)

    @field_validator("cron_expression")
    @classmethod
    def _cron_is_valid(cls, value: str | None) -> str | None:
        return None if value is None else validate_cron(value)

    @field_validator("timezone")
    @classmethod
    def _timezone_is_iana(cls, value: str) -> str:
        try:
            zone_named(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _exactly_one_schedule(self) -> Self:
        given = [
            name
            for name in ("cron_expression", "interval_minutes", "run_at")
            if getattr(self, name) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of cron_expression, interval_minutes, run_at"
                f" (got {', '.join(given) or 'none'})"
            )
        return self

    @model_validator(mode="after")
    def _cron_fires_in_active_hours(self) -> Self:
        hours = self.active_hours
        if self.cron_expression is not None and hours is not None:
            check_fires_within(self.cron_expression, hours.start, hours.end, hours.weekdays)
        return self

    @property
    def zone(self) -> ZoneInfo:
        return zone_named(self.timezone)


def retry_delay_seconds(base_seconds: float, attempt: int) -> float:
    """Backoff after failed `attempt` (1-based): base * 2^(attempt-1), capped at one hour."""
    delay: float = base_seconds * 2.0 ** (attempt - 1)
    return min(delay, MAX_RETRY_BACKOFF_SECONDS)
