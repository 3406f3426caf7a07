"""Scrapers: the API plugins implement, and the registry the runner looks them up in."""

from services.runner.scrapers.base import ScrapeContext, Scraper, parse_params
from services.runner.scrapers.errors import (
    InvalidParamsError,
    PermanentScrapeError,
    ScrapeError,
    TransientScrapeError,
)
from services.runner.scrapers.registry import ENTRY_POINT_GROUP, ScraperRegistry

__all__ = [
    "ENTRY_POINT_GROUP",
    "InvalidParamsError",
    "PermanentScrapeError",
    "ScrapeContext",
    "ScrapeError",
    "Scraper",
    "ScraperRegistry",
    "TransientScrapeError",
    "parse_params",
]
