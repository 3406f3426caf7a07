"""A demo listings website and schedules that scrape it (`natscron up --demo`)."""

from natscron.demo.listings import PAGE_SIZE, listing_count, page_count
from natscron.demo.schedules import demo_schedules, listing_params
from natscron.demo.site import DEMO_LOCATIONS, DemoListingsSite

__all__ = [
    "DEMO_LOCATIONS",
    "PAGE_SIZE",
    "DemoListingsSite",
    "demo_schedules",
    "listing_count",
    "listing_params",
    "page_count",
]
