"""The scrape a legacy document describes: its scraper name and params.

Legacy documents name no scraper (the legacy app had one, scraping property listings);
their scrape fields `locations`, `listing_type` and `limit` become the natscron params,
under the scraper the migration is told to use. A document with its own `scraper` and
`params` keeps them.
"""

from typing import Any

from natscron.migration.legacy_values import LegacyValueError, choice, count, text
from natscron_shared.contract.storage import Document

LISTING_TYPES = ("for_sale", "for_rent", "sold", "pending")
SCRAPE_FIELDS = ("scraper", "params", "locations", "listing_type", "limit")


def locations(document: Document) -> list[str] | None:
    value = document.get("locations")
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(place, str) and place.strip() for place in value)
    ):
        raise LegacyValueError(f"locations {value!r} is not a non-empty list of place names")
    return [place.strip() for place in value]


def scrape_params(document: Document) -> dict[str, Any]:
    """`params` (when the document has them) plus the scrape fields it sets."""
    given = document.get("params")
    if given is not None and not isinstance(given, dict):
        raise LegacyValueError(f"params {given!r} is not a mapping")
    params: dict[str, Any] = dict(given or {})
    listing_type = choice(document, "listing_type", LISTING_TYPES)
    limit = count(document, "limit")
    if limit == 0:
        raise LegacyValueError("limit 0 would scrape nothing")
    found = {"locations": locations(document), "listing_type": listing_type, "limit": limit}
    params.update({name: value for name, value in found.items() if value is not None})
    return params


def scraper_name(document: Document, default: str) -> str:
    return text(document, "scraper") or default
