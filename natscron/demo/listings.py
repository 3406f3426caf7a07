"""Deterministic fake real-estate listings: the same location always has the same homes;
only prices drift, step by step with time, so repeated scrapes see changed data."""

import hashlib
from dataclasses import dataclass
from datetime import datetime

LISTING_TYPES = ("for_sale", "for_rent")
PAGE_SIZE = 12
PRICE_STEP_SECONDS = 10
STREETS = ("Oak", "Maple", "Cedar", "Pine", "Elm", "Lake", "Hill", "Park", "River", "Sunset")


@dataclass(frozen=True)
class Listing:
    listing_id: str
    address: str
    price: int
    beds: int
    baths: int
    sqft: int


def _number(*parts: object) -> int:
    digest = hashlib.sha256("|".join(str(part) for part in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def listing_count(slug: str, listing_type: str) -> int:
    """Between 2 and 4 pages' worth, the last page usually partial."""
    return PAGE_SIZE * (2 + _number(slug, listing_type) % 3) - _number(slug, "short") % 5


def page_count(slug: str, listing_type: str) -> int:
    return -(-listing_count(slug, listing_type) // PAGE_SIZE)


def city_of(slug: str) -> str:
    """`austin-tx` -> `Austin, TX`."""
    *city, state = slug.split("-")
    if not city or len(state) != 2:
        return " ".join(word.capitalize() for word in slug.split("-"))
    return f"{' '.join(word.capitalize() for word in city)}, {state.upper()}"


def _listing(slug: str, listing_type: str, index: int, now: datetime) -> Listing:
    seed = _number(slug, listing_type, index)
    beds = 1 + seed % 5
    low, spread = (150_000, 750_000) if listing_type == "for_sale" else (900, 3_100)
    base = low + (seed // 7) % spread
    step = int(now.timestamp()) // PRICE_STEP_SECONDS
    drift = ((step + index) % 5 - 2) / 100
    return Listing(
        listing_id=f"{slug}-{listing_type}-{index:04d}",
        address=f"{1 + seed % 9899} {STREETS[seed % len(STREETS)]} St, {city_of(slug)}",
        price=int(round(base * (1 + drift), -1)),
        beds=beds,
        baths=1 + (seed // 11) % beds,
        sqft=500 + beds * 350 + (seed // 13) % 400,
    )


def listings_page(slug: str, listing_type: str, page: int, now: datetime) -> list[Listing]:
    """Page `page` (1-based); empty beyond the last page."""
    first = (page - 1) * PAGE_SIZE
    last = min(first + PAGE_SIZE, listing_count(slug, listing_type))
    return [_listing(slug, listing_type, index, now) for index in range(max(first, 0), last)]
