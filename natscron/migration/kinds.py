"""The kinds of scrape the sources schedule, which the scraper map maps to natscron scrapers.

A kind names what the source system did, not how natscron does it: seed 000's and seed
001's property listings (`listing`, refined by listing type: `listing.sold`), seed 003's
cookie scan of a domain (`domain_scan`) and seed 004's crawl of a site (`crawl`). The map
finds a kind's entry, else its base kind's (`listing.sold`, then `listing`).
"""

LISTING = "listing"
DOMAIN_SCAN = "domain_scan"
CRAWL = "crawl"
LISTING_TYPES = ("for_sale", "for_rent", "sold", "pending")

TEMPLATE_FIELDS: dict[str, tuple[str, ...]] = {
    LISTING: ("id", "name", "locations", "listing_type", "limit", "params"),
    DOMAIN_SCAN: ("id", "name", "domain", "domain_config_id", "profile_id", "frequency"),
    CRAWL: ("id", "name", "url", "source_id", "source_name", "metadata"),
}
"""What a params template of each base kind may use (docs/migration.md says what each is)."""

KNOWN_KINDS = (
    LISTING,
    *(f"{LISTING}.{listing_type}" for listing_type in LISTING_TYPES),
    DOMAIN_SCAN,
    CRAWL,
)


def listing_kind(listing_type: str | None) -> str:
    return LISTING if listing_type is None else f"{LISTING}.{listing_type}"


def base_kind(kind: str) -> str:
    return kind.partition(".")[0]
