"""The `cookie_scan` scraper's params (seed 003's scan: `domain`, `customPages`,
`maxPages`, `scanDepth`, `accept_selector`), and (`FetchParams`) how its pages are fetched."""

from pydantic import Field, field_validator

from natscron_runner.scrapers.listing_params import HttpUrl, check_css, check_http_urls
from natscron_runner.scrapers.polite import FetchParams

MAX_CUSTOM_PAGES = 100


class CookieScanParams(FetchParams):
    url: HttpUrl = Field(description="the start page; its registrable domain is the first party")
    custom_pages: list[str] = Field(
        default_factory=list,
        max_length=MAX_CUSTOM_PAGES,
        description="more pages to scan: paths (resolved against url) or http(s) URLs",
    )
    max_pages: int = Field(default=20, ge=1, le=500, description="pages visited per phase")
    scan_depth: int = Field(
        default=1,
        ge=0,
        le=10,
        description="link hops followed from the start page, within its site; 0 scans the"
        " start page and custom_pages only",
    )
    accept_selector: str | None = Field(
        default=None,
        description="CSS of the consent control to click; without one there is no"
        " after_consent phase",
    )
    consent_timeout_seconds: float = Field(
        default=10.0, gt=0, le=120, description="how long to wait for the consent control"
    )
    page_timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    network_idle_seconds: float = Field(
        default=5.0,
        ge=0,
        le=60,
        description="after each load, wait up to this long for the network to be idle, so"
        " late scripts set their cookies; 0 does not wait",
    )
    screenshot_on_failure: bool = True

    @field_validator("url")
    @classmethod
    def _url_is_http(cls, url: str) -> str:
        check_http_urls([url])
        return url

    @field_validator("custom_pages")
    @classmethod
    def _pages_are_paths_or_urls(cls, pages: list[str]) -> list[str]:
        for page in pages:
            if "://" in page:
                check_http_urls([page])
            elif not page.startswith("/"):
                raise ValueError(f"custom page {page!r} is neither a path (/...) nor a URL")
        return pages

    @field_validator("accept_selector")
    @classmethod
    def _selector_is_css(cls, selector: str | None) -> str | None:
        return None if selector is None else check_css(selector)
