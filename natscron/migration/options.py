"""How a migration runs: which scraper each kind of schedule gets, and how careful to be."""

from dataclasses import dataclass, field

from natscron.migration.scraper_map import ScraperMap


@dataclass(frozen=True)
class MigrationOptions:
    scrapers: ScraperMap = field(default_factory=ScraperMap)
    """Nothing mapped by default: the sources name no scraper natscron ships."""
    skip_unmapped: bool = False
    """Leave out schedules of unmapped kinds rather than refuse to start."""
    dry_run: bool = False
    """Write nothing anywhere; report what would be done."""
    force: bool = False
    """Replace a KV spec that differs from its definition, recreate one deleted in natscron."""
    unchecked: bool = False
    """Do not check scrapers and params against what the live runners advertise."""
