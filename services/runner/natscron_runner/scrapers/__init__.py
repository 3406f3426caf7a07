"""Scrapers: the API plugins implement, and the registry the runner looks them up in."""

from natscron_runner.scrapers.base import ScrapeContext, Scraper, parse_params
from natscron_runner.scrapers.errors import (
    InvalidParamsError,
    PermanentScrapeError,
    ScrapeError,
    TransientScrapeError,
)
from natscron_runner.scrapers.registry import ENTRY_POINT_GROUP, ScraperRegistry

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
