"""The scheduled-job spec: what users apply, what KV `scheduled_jobs` holds."""

from datetime import datetime, timedelta
from typing import Annotated, Any, Self
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from natscron_shared.contract.enums import (
    Catchup,
    ChainOn,
    ConcurrencyPolicy,
    IntervalAnchor,
    JobStatus,
    Priority,
    ScheduledJobStatus,
)
from natscron_shared.contract.iso_time import iso_text
from natscron_shared.contract.pools import PoolName
from natscron_shared.contract.schema_rules import (
    exactly_one_of_or_instead,
    only_with,
    positive,
    rules,
)
from natscron_shared.timing.active_hours import ActiveHours
from natscron_shared.timing.cron import check_fires_within, validate_cron
from natscron_shared.timing.cron_fields import CRON_PATTERN
from natscron_shared.timing.zones import iana_zones, zone_named

# Ids become KV keys and NATS subject tokens: no dots, spaces or wildcards.
Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,100}$")]
JobId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,255}$")]
"""A job id: a subject token too (`jobs.events.<job_id>`), longer than a scheduled job's."""
MAX_RETRY_BACKOFF_SECONDS = 3600.0
MAX_LABELS = 64
MAX_NOTE_CHARS = 500
LABEL_KEY = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}"
LABEL_VALUE = r"[A-Za-z0-9_.-]{0,63}"
LabelKey = Annotated[str, Field(pattern=f"^{LABEL_KEY}$")]
LabelValue = Annotated[str, Field(pattern=f"^{LABEL_VALUE}$")]
LabelSelector = Annotated[
    str,
    Field(
        pattern=f"^{LABEL_KEY}={LABEL_VALUE}(,{LABEL_KEY}={LABEL_VALUE})*$",
        max_length=MAX_LABELS * 128,
        description="labels that must all match: `team=sold,env=prod`",
    ),
]
"""Picks scheduled jobs by their labels (`natscron_shared.nats.schedule_bucket.select`)."""
MAX_INTERVAL = timedelta(days=3660)
"""Ten years: slot maths near the end of the calendar (year 9999) would overflow."""
MAX_JITTER_SECONDS = 86_400.0
MAX_COUNT = 2**31 - 1
"""Counts (`max_runs`, `failure_threshold`) are stored in MongoDB, which holds 64-bit integers
only; no one counts past this."""
SUPPORTED_YEARS = range(1900, 9000)
"""Years of `run_at`, `start_at` and `end_at`: the slot maths add periods, jitter and
microseconds to them, which must not leave the calendar."""


def _supported_moment(value: datetime) -> datetime:
    if value.year not in SUPPORTED_YEARS:
        raise ValueError(
            f"must lie between the years {SUPPORTED_YEARS.start} and {SUPPORTED_YEARS.stop}"
        )
    return value


IsoAwareDatetime = Annotated[AwareDatetime, iso_text]
Moment = Annotated[
    IsoAwareDatetime,
    AfterValidator(_supported_moment),
    Field(json_schema_extra={"pattern": "^(19[0-9]{2}|[2-8][0-9]{3})-"}),
]
"""The years the JSON schema says too: 1900 to 8999."""


class Interval(BaseModel):
    """A fixed period, in any mix of units that add up, as APScheduler's
    `IntervalTrigger(hours=2, minutes=30)`: `{hours: 2, minutes: 30}`, `{seconds: 90}`.

    `from` (`from_` in Python, a keyword) says what the periods count from: `start`
    (`start_at`, or the Unix epoch), or `last_run`: a period after the schedule's previous
    scheduled run finished (`natscron_shared.contract.last_runs`)."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        serialize_by_alias=True,
        json_schema_extra=positive("days", "hours", "minutes", "seconds"),
    )

    days: float = Field(default=0, ge=0, le=MAX_INTERVAL.days)
    hours: float = Field(default=0, ge=0, le=MAX_INTERVAL.days * 24)
    minutes: float = Field(default=0, ge=0, le=MAX_INTERVAL.days * 24 * 60)
    seconds: float = Field(default=0, ge=0, le=MAX_INTERVAL.total_seconds())
    from_: IntervalAnchor = Field(default=IntervalAnchor.START, alias="from")

    @property
    def period(self) -> timedelta:
        return timedelta(
            days=self.days, hours=self.hours, minutes=self.minutes, seconds=self.seconds
        )


MAX_WEBHOOKS = 5
MAX_WEBHOOK_URL_CHARS = 2048
WEBHOOK_SECRET_ENV_PREFIX = "NATSCRON_WEBHOOK_SECRET_"


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    try:
        parts.port  # noqa: B018 (a port that is not a number raises here)
    except ValueError as exc:
        raise ValueError(f"{value!r} has an invalid port") from exc
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or any(c.isspace() for c in value)
    ):
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value


def _zones_enum(schema: dict[str, Any]) -> None:
    schema["enum"] = sorted(iana_zones())


def _terminal(value: JobStatus) -> JobStatus:
    if not value.is_terminal:
        raise ValueError(
            f"{value.value!r} is not a final status (completed, failed, cancelled, skipped)"
        )
    return value


_H16 = "[0-9A-Fa-f]{1,4}"
IPV6 = "|".join(
    (
        f"({_H16}:){{7}}{_H16}",
        f"({_H16}:){{1,7}}:",
        *(f"({_H16}:){{1,{7 - n}}}(:{_H16}){{1,{n}}}" for n in range(1, 7)),
        f":((:{_H16}){{1,7}}|:)",
    )
)
PORT = "0*([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]|0)"
HTTP_URL = (
    r"^[Hh][Tt][Tt][Pp][Ss]?://([^\s/?#\[\]]*@)?([^\s/?#@:\[\]]+|\[(" + IPV6 + r")\])"
    rf"(:({PORT})?)?([/?#][^\s]*)?$"
)
"""What `_http_url` accepts, for JSON schemas (IPv6 literals in their plain forms)."""
FinalStatus = Annotated[
    JobStatus,
    AfterValidator(_terminal),
    WithJsonSchema({"type": "string", "enum": [s.value for s in JobStatus if s.is_terminal]}),
]


class Webhook(BaseModel):
    """A URL the recorder POSTs a run's outcome to when it ends in one of `on`.

    `secret` names a secret, it never holds one: the sending process reads the value from
    the environment variable `NATSCRON_WEBHOOK_SECRET_<NAME>` (upper-cased, `-` as `_`) and
    signs each body with it (`X-Natscron-Signature: sha256=<hex HMAC-SHA256>`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: Annotated[
        str,
        Field(max_length=MAX_WEBHOOK_URL_CHARS, json_schema_extra={"pattern": HTTP_URL}),
        AfterValidator(_http_url),
    ]
    on: list[FinalStatus] = Field(min_length=1)
    secret: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")

    @property
    def secret_variable(self) -> str | None:
        """The environment variable that holds the secret, if one is named."""
        if self.secret is None:
            return None
        return WEBHOOK_SECRET_ENV_PREFIX + self.secret.upper().replace("-", "_")


MAX_PARENTS = 16


class ChainLink(BaseModel):
    """One parent of a chained schedule: it runs after that schedule's runs that end as
    `on` says (`natscron_shared.contract.chains`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scheduled_job_id: Identifier
    on: ChainOn = ChainOn.SUCCESS

    @model_validator(mode="before")
    @classmethod
    def _yaml_on(cls, data: Any) -> Any:
        """YAML 1.1 (PyYAML's) reads a bare `on:` key as the boolean true: it means `on`."""
        if isinstance(data, dict) and True in data and "on" not in data:
            return {("on" if key is True else key): value for key, value in data.items()}
        return data


class ScheduledJob(BaseModel):
    """One recurring (or one-time) scrape: exactly one of cron, interval (or the older
    interval_minutes), run_at; optionally bounded, jittered and limited in runs.

    - `start_at`, `end_at`: no slot before `start_at` or after `end_at` (both inclusive);
      an interval counts its periods from `start_at` (from the Unix epoch without one), or,
      `from: last_run`, from the end of its previous scheduled run (first at `start_at`).
    - `jitter_seconds`: each slot fires a deterministic offset later, in
      `[0, jitter_seconds)`; see `natscron_shared.timing.schedule` for how slots keep their order.
      An interval's jitter must be smaller than its period.
    - `max_runs`: the ticker fires at most that many scheduled runs (triggers do not
      count); the count restarts when `max_runs` changes, not when other fields do.
    - `after`: it also runs after the final runs of other schedules (its parents), as a
      chain; with it, the cron, interval or `run_at` may be left out.

    The JSON schema says every rule but those between values, which only validation checks:
    a cron range runs upwards and its days of month occur, a cron with `active_hours` fires
    inside them, an interval is at most 3660 days in all, `end_at` follows `start_at`.
    """

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra=rules(
            exactly_one_of_or_instead(
                ("cron_expression", "interval", "interval_minutes", "run_at"), "after"
            ),
            only_with(("paused_reason", "paused_at"), "status", ScheduledJobStatus.PAUSED.value),
        ),
    )

    scheduled_job_id: Identifier
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    status: ScheduledJobStatus = ScheduledJobStatus.ACTIVE

    cron_expression: Annotated[str, Field(json_schema_extra={"pattern": CRON_PATTERN})] | None = (
        None
    )
    interval: Interval | None = None
    interval_minutes: float | None = Field(default=None, gt=0, le=MAX_INTERVAL.total_seconds() / 60)
    run_at: Moment | None = None
    timezone: str = Field(default="UTC", json_schema_extra=_zones_enum)
    active_hours: ActiveHours | None = None
    start_at: Moment | None = None
    end_at: Moment | None = None
    jitter_seconds: float = Field(default=0.0, ge=0, le=MAX_JITTER_SECONDS)
    max_runs: int | None = Field(default=None, ge=1, le=MAX_COUNT)
    after: list[ChainLink] = Field(default_factory=list, max_length=MAX_PARENTS)
    """The schedules it runs after: one run per qualifying final run of a single parent;
    with several, once each has had one since its last chained run."""

    scraper: Identifier
    params: dict[str, Any] = Field(default_factory=dict)
    pool: PoolName | None = None
    """The runner pool that runs it (`natscron_shared.contract.pools`). Left out, `apply`
    (and the API) writes the pool its scraper is offered in; a spec written unchecked
    without one keeps the pool it had, or runs in the default pool."""

    priority: Priority = Priority.NORMAL
    concurrency_policy: ConcurrencyPolicy = ConcurrencyPolicy.ALLOW
    max_retries: int = Field(default=0, ge=0, le=100)
    retry_backoff_seconds: float = Field(default=30.0, ge=0, le=MAX_RETRY_BACKOFF_SECONDS)
    timeout_seconds: float = Field(default=3600.0, gt=0)
    misfire_grace_seconds: float = Field(default=300.0, ge=0)
    catchup: Catchup = Catchup.LATEST
    failure_threshold: int | None = Field(default=None, ge=1, le=MAX_COUNT)
    """Pause the job (with `paused_reason`) each time this many runs in a row failed."""

    labels: dict[LabelKey, LabelValue] = Field(
        default_factory=dict,
        max_length=MAX_LABELS,
        json_schema_extra={"additionalProperties": False},
    )
    """Free key/value tags, for picking jobs in bulk (`team=sold,env=prod`)."""
    paused_reason: str | None = Field(default=None, max_length=MAX_NOTE_CHARS)
    paused_at: IsoAwareDatetime | None = None
    webhooks: list[Webhook] = Field(default_factory=list, max_length=MAX_WEBHOOKS)
    """URLs called when a run ends (see `Webhook`); the recorder sends them."""

    @field_validator("cron_expression")
    @classmethod
    def _cron_is_valid(cls, value: str | None) -> str | None:
        return None if value is None else validate_cron(value)

    @field_validator("timezone")
    @classmethod
    def _timezone_is_iana(cls, value: str) -> str:
        if value not in iana_zones():
            raise ValueError(f"unknown IANA time zone {value!r}")
        return value

    @model_validator(mode="after")
    def _exactly_one_schedule(self) -> Self:
        given = [
            name
            for name in ("cron_expression", "interval", "interval_minutes", "run_at")
            if getattr(self, name) is not None
        ]
        if len(given) > 1 or not (given or self.after):
            raise ValueError(
                "give exactly one of cron_expression, interval, interval_minutes, run_at"
                f" (got {', '.join(given) or 'none'}), or after (a chain) with at most one"
            )
        return self

    @model_validator(mode="after")
    def _parents_are_others(self) -> Self:
        parents = self.parents
        if self.scheduled_job_id in parents:
            own = self.scheduled_job_id
            raise ValueError(f"a schedule cannot run after itself ({own} -> {own})")
        repeated = sorted({p for p in parents if parents.count(p) > 1})
        if repeated:
            raise ValueError(f"after names {', '.join(repeated)} more than once")
        return self

    @model_validator(mode="after")
    def _pause_note_only_when_paused(self) -> Self:
        noted = self.paused_reason is not None or self.paused_at is not None
        if noted and self.status is not ScheduledJobStatus.PAUSED:
            raise ValueError("paused_reason and paused_at belong to a paused job only")
        return self

    @model_validator(mode="after")
    def _interval_is_positive(self) -> Self:
        period = self.interval_period
        if period is not None and not timedelta(0) < period <= MAX_INTERVAL:
            raise ValueError(
                f"the interval must be longer than zero and at most {MAX_INTERVAL.days} days"
                f" (got {period})"
            )
        return self

    @model_validator(mode="after")
    def _slots_inside_bounds(self) -> Self:
        start, end, run_at = self.start_at, self.end_at, self.run_at
        if start is not None and end is not None and end <= start:
            raise ValueError(f"end_at ({end}) must be after start_at ({start})")
        if run_at is not None and start is not None and run_at < start:
            raise ValueError(f"run_at ({run_at}) is before start_at ({start}): it would never fire")
        if run_at is not None and end is not None and run_at > end:
            raise ValueError(f"run_at ({run_at}) is after end_at ({end}): it would never fire")
        return self

    @model_validator(mode="after")
    def _jitter_keeps_interval_slots_in_order(self) -> Self:
        period = self.interval_period
        if period is not None and self.jitter_seconds >= period.total_seconds():
            raise ValueError(
                f"jitter_seconds ({self.jitter_seconds:g}) must be smaller than the interval"
                f" ({period.total_seconds():g} s): a larger jitter would fire slots out of order"
            )
        return self

    @model_validator(mode="after")
    def _cron_fires_in_active_hours(self) -> Self:
        hours = self.active_hours
        if self.cron_expression is not None and hours is not None:
            check_fires_within(self.cron_expression, self.timezone, hours)
        return self

    @property
    def zone(self) -> ZoneInfo:
        return zone_named(self.timezone)

    @property
    def counts_from_last_run(self) -> bool:
        """An interval `from: last_run`: its slots depend on when its runs finish."""
        interval = self.interval
        return interval is not None and interval.from_ is IntervalAnchor.LAST_RUN

    @property
    def parents(self) -> list[str]:
        """The ids of the schedules it runs after, in the order given."""
        return [link.scheduled_job_id for link in self.after]

    def link_to(self, parent_id: str) -> ChainLink | None:
        return next((link for link in self.after if link.scheduled_job_id == parent_id), None)

    @property
    def interval_period(self) -> timedelta | None:
        """The period of an interval schedule, whichever way it was given."""
        if self.interval is not None:
            return self.interval.period
        if self.interval_minutes is not None:
            return timedelta(minutes=self.interval_minutes)
        return None


def retry_delay_seconds(base_seconds: float, attempt: int) -> float:
    """Backoff after failed `attempt` (1-based): base * 2^(attempt-1), capped at one hour."""
    delay: float = base_seconds * 2.0 ** (attempt - 1)
    return min(delay, MAX_RETRY_BACKOFF_SECONDS)
