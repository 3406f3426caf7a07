"""The `crawl` scraper's params: where to start, how far to go, what to read per page."""

import re
from typing import Self

from pydantic import Field, field_validator, model_validator

from natscron_runner.scrapers.listing_params import (
    FieldSpec,
    HttpUrl,
    check_css,
    check_field_specs,
    check_http_urls,
)
from natscron_runner.scrapers.polite.params import FetchParams

MAX_PATTERNS = 50
DOMAIN = re.compile(
    r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)


class CrawlParams(FetchParams):
    """Seeds, scope and limits; per page, items read with the `http` scraper's field specs
    (or the page itself as one item); and (`FetchParams`) how pages are fetched."""

    urls: list[HttpUrl] = Field(min_length=1, max_length=100, description="the seed pages")
    max_depth: int = Field(
        default=2, ge=0, le=20, description="links followed from a seed (0: the seeds only)"
    )
    max_pages: int = Field(default=100, ge=1, le=5000, description="pages fetched at most")
    allowed_domains: list[str] | None = Field(
        default=None,
        max_length=MAX_PATTERNS,
        description="hosts a link may lead to, each with its subdomains; default: the seeds'"
        " hosts (and their subdomains)",
    )
    allow: list[str] = Field(
        default_factory=list,
        max_length=MAX_PATTERNS,
        description="regular expressions: when given, a link is followed only if its"
        " normalised URL matches one",
    )
    deny: list[str] = Field(
        default_factory=list,
        max_length=MAX_PATTERNS,
        description="regular expressions: a link whose normalised URL matches one is not followed",
    )
    link_selector: str = Field(default="a[href]", min_length=1, description="CSS of the links")
    item_selector: str | None = Field(
        default=None,
        min_length=1,
        description="CSS of the items on each page; unset: each page is one item, keyed by"
        " its URL, with `url`, `depth` and the fields read off the whole page",
    )
    fields: dict[str, str] = Field(
        default_factory=dict, description="field name -> field spec (as the http scraper's)"
    )
    key_field: str | None = Field(
        default=None, description="the field keying an item; needed with item_selector"
    )
    limit: int | None = Field(default=None, ge=1, description="items produced at most")
    request_timeout_seconds: float = Field(default=30.0, gt=0, le=600)

    @field_validator("urls")
    @classmethod
    def _urls_are_http(cls, urls: list[str]) -> list[str]:
        return check_http_urls(urls)

    @field_validator("allowed_domains")
    @classmethod
    def _domains_are_hosts(cls, domains: list[str] | None) -> list[str] | None:
        if domains is None:
            return None
        lowered = [domain.lower().rstrip(".") for domain in domains]
        for domain in lowered:
            if not DOMAIN.fullmatch(domain):
                raise ValueError(f"{domain!r} is not a host name")
        return lowered

    @field_validator("allow", "deny")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from exc
        return patterns

    @field_validator("link_selector", "item_selector")
    @classmethod
    def _selector_is_css(cls, selector: str | None) -> str | None:
        return None if selector is None else check_css(selector)

    @field_validator("fields")
    @classmethod
    def _field_specs_parse(cls, fields: dict[str, str]) -> dict[str, str]:
        return check_field_specs(fields)

    @model_validator(mode="after")
    def _items_are_keyed(self) -> Self:
        if self.key_field is not None and self.key_field not in self.fields:
            raise ValueError(f"key_field {self.key_field!r} is not one of fields")
        if self.item_selector is not None and self.key_field is None:
            raise ValueError("item_selector needs a key_field naming the field that keys items")
        return self

    def field_specs(self) -> dict[str, FieldSpec]:
        return {name: FieldSpec.parse(spec) for name, spec in self.fields.items()}
