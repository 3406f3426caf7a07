"""The `http` scraper's params: the listing params, and how long one request may take."""

from pydantic import Field

from natscron_runner.scrapers.listing_params import ListingParams


class HttpParams(ListingParams):
    request_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
