"""What a source hands the migration: its schedules and runs, read and converted as far as
they can be without knowing which natscron scraper will run them.

Every source (the MongoDB layouts, the PostgreSQL ones) produces these; the steps after
reading (scraper choice, KV, `jobs`, counting) are the same for all of them.
"""

from dataclasses import dataclass, field
from typing import Any

from natscron_shared.contract.storage import JobDocument, MigratedFrom


@dataclass(frozen=True)
class Origin:
    """Where a record was found, kept on what it becomes (`migrated_from`)."""

    source: str
    """`<store>:<collection or table>`, as `mongodb:scheduled_jobs`."""
    legacy_id: str
    legacy_job_id: str | None = None

    def migrated_from(self) -> MigratedFrom:
        return {
            "source": self.source,
            "legacy_id": self.legacy_id,
            "legacy_job_id": self.legacy_job_id,
        }


@dataclass(frozen=True)
class Scrape:
    """What a schedule or a run scrapes, before a scraper is chosen for it."""

    kind: str
    """The source kind the scraper map is keyed by (`natscron.migration.kinds`)."""
    fields: dict[str, Any]
    """The values a params template may use, by name (None: the source has none)."""
    params: dict[str, Any]
    """The params when the kind is mapped without a template (`--scraper NAME`)."""
    own_scraper: str | None = None
    """A scraper the source names itself: it runs with that one, whatever the map says."""


@dataclass(frozen=True)
class Definition:
    """A source schedule. Without `problem`, `spec_fields` and `scrape` are set."""

    origin: Origin
    handle: object
    """The source's own key, for marking the record as migrated (MongoDB sources)."""
    keys: tuple[str, ...]
    """The references by which runs name this schedule."""
    spec_fields: dict[str, Any] = field(default_factory=dict)
    """The `ScheduledJob` fields but `scraper` and `params`."""
    scrape: Scrape | None = None
    notes: tuple[str, ...] = ()
    """Assumptions made while converting (a default time zone, a disabled job paused)."""
    problem: str | None = None
    """Why it cannot be converted, as a sentence."""
    marker: object = None
    """The source's own "migrated" marker, if the source keeps one and it is set."""
    superseded_by: str | None = None
    """The key of another schedule of the source that replaces this one."""


@dataclass(frozen=True)
class Run:
    """A source run. Without `problem`, `document` is set."""

    origin: Origin
    handle: object
    reference: str | None
    """The key of its schedule (`Definition.keys`); None for a one-time job."""
    document: JobDocument | None = None
    """The natscron `jobs` document but the fields its schedule decides: `scheduled_job_id`,
    `scraper`, `params`, and `priority` when it is absent."""
    scrape: Scrape | None = None
    """What the run scraped, when the source says so for the run itself."""
    problem: str | None = None
    link_problem: str | None = None
    """Why the reference to its schedule cannot be read."""
    marker: object = None
    """The source's own "migrated" marker: a marked run is not looked at again."""
