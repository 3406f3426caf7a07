"""How a migration runs: which scraper legacy definitions get, and how careful to be."""

from dataclasses import dataclass

DEFAULT_SCRAPER = "listings"
"""Legacy definitions name no scraper: they all scraped property listings."""


@dataclass(frozen=True)
class MigrationOptions:
    scraper: str = DEFAULT_SCRAPER
    dry_run: bool = False
    """Write nothing anywhere; report what would be done."""
    force: bool = False
    """Replace a KV spec that differs from its definition, recreate one deleted in natscron."""
    unchecked: bool = False
    """Do not check scrapers and params against what the live runners advertise."""
