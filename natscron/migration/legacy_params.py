"""The scrape a MongoDB source document describes (seed 000's and seed 001's property
listings): its kind, the fields a params template may use, and its own params.

The documents name no scraper (the legacy app had one, scraping property listings); their
scrape fields `locations`, `listing_type` and `limit`, added to a `params` mapping when the
document has one, are the params a kind mapped without a template runs with. A document
with its own `scraper` keeps it, with those params.
"""

from typing import Any

from natscron.migration.kinds import LISTING_TYPES, listing_kind
from natscron.migration.legacy_values import LegacyValueError, choice, count, text
from natscron.migration.records import Scrape
from natscron_shared.contract.storage import Document

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


def has_scrape_fields(document: Document) -> bool:
    return any(document.get(name) is not None for name in SCRAPE_FIELDS)


def listing_scrape(document: Document, identifier: str) -> Scrape:
    """Raises `LegacyValueError` for a scrape field natscron cannot take as it is."""
    given = document.get("params")
    if given is not None and not isinstance(given, dict):
        raise LegacyValueError(f"params {given!r} is not a mapping")
    listing_type = choice(document, "listing_type", LISTING_TYPES)
    limit = count(document, "limit")
    if limit == 0:
        raise LegacyValueError("limit 0 would scrape nothing")
    found = {"locations": locations(document), "listing_type": listing_type, "limit": limit}
    params: dict[str, Any] = dict(given or {})
    params.update({name: value for name, value in found.items() if value is not None})
    fields = {"id": identifier, "name": text(document, "name"), "params": given, **found}
    return Scrape(listing_kind(listing_type), fields, params, text(document, "scraper"))


def described_name(scrape: Scrape) -> str:
    """`"<LISTING_TYPE> <locations>"` (`FOR_SALE Indianapolis, IN`), or "" without them."""
    listing_type = scrape.fields.get("listing_type")
    places = scrape.fields.get("locations") or []
    parts = (str(listing_type).upper() if listing_type else "", ", ".join(places))
    return " ".join(part for part in parts if part)
