"""The demo's scheduled jobs: the `http` scraper against the demo listings site."""

from typing import Any

from natscron.demo.html import listing_url
from natscron_shared.contract.models import ScheduledJob

LISTING_FIELDS = {
    "listing_id": "@data-id",
    "address": ".address",
    "price": ".price@data-value",
    "beds": ".beds",
    "baths": ".baths",
    "sqft": ".sqft",
    "url": "a.details@href",
}


def listing_params(site_url: str, slug: str, listing_type: str = "for_sale") -> dict[str, Any]:
    """`http` scraper params reading every page of one location's listings."""
    return {
        "urls": [site_url.rstrip("/") + listing_url(slug, listing_type, 1)],
        "item_selector": "article.listing",
        "fields": LISTING_FIELDS,
        "key_field": "listing_id",
        "next_page_selector": "a.next",
        "request_timeout_seconds": 10,
    }


def demo_schedules(site_url: str) -> list[ScheduledJob]:
    """Austin homes for sale every 10 s, Denver rentals every minute."""
    return [
        ScheduledJob(
            scheduled_job_id="demo-austin-for-sale",
            name="Austin homes for sale (every 10 s)",
            description="Demo: scrapes the demo listings site",
            cron_expression="*/10 * * * * *",
            scraper="http",
            params=listing_params(site_url, "austin-tx", "for_sale"),
            max_retries=2,
            retry_backoff_seconds=2,
            timeout_seconds=60,
        ),
        ScheduledJob(
            scheduled_job_id="demo-denver-for-rent",
            name="Denver rentals (every minute)",
            description="Demo: scrapes the demo listings site",
            cron_expression="* * * * *",
            scraper="http",
            params=listing_params(site_url, "denver-co", "for_rent"),
            max_retries=2,
            retry_backoff_seconds=5,
            timeout_seconds=120,
        ),
    ]
