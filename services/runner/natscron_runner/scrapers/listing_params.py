"""Params every listing scraper shares (`http`, `browser`): which pages to read, how to read
items off them with field specs, and (`FetchParams`) how to fetch them. The URL and field
spec checks serve the other scrapers' params too (`crawl`, `cookie_scan`)."""

from dataclasses import dataclass
from typing import Annotated, Self
from urllib.parse import urlsplit

import soupsieve
from pydantic import Field, field_validator, model_validator

from natscron_runner.scrapers.polite.params import FetchParams

ALLOWED_SCHEMES = ("http", "https")
HTTP_URL_PATTERN = "^[Hh][Tt][Tt][Pp][Ss]?://[^/?#]+"
"""What `is_http_url` checks, as the params schema says it (for `apply` and `jobs.trigger`)."""
HttpUrl = Annotated[
    str,
    Field(json_schema_extra={"pattern": HTTP_URL_PATTERN, "errorMessage": "is not an http(s) URL"}),
]


@dataclass(frozen=True)
class FieldSpec:
    """`"selector"` -> its text; `"selector@attr"` -> its attribute; `"@attr"` -> the item's."""

    selector: str
    attr: str | None

    @classmethod
    def parse(cls, spec: str) -> "FieldSpec":
        if "@" not in spec:
            return cls(selector=spec.strip(), attr=None)
        selector, _, attr = spec.rpartition("@")
        if not attr.strip():
            raise ValueError(f"field spec {spec!r} names no attribute after '@'")
        return cls(selector=selector.strip(), attr=attr.strip())


def is_http_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ALLOWED_SCHEMES and bool(parts.netloc)


def check_css(selector: str) -> str:
    """`selector` if it parses as CSS, else a `ValueError` saying why."""
    try:
        soupsieve.compile(selector)
    except soupsieve.SelectorSyntaxError as exc:
        raise ValueError(f"invalid CSS selector {selector!r}: {exc}") from exc
    return selector


def check_http_urls(urls: list[str]) -> list[str]:
    for url in urls:
        if not is_http_url(url):
            raise ValueError(f"{url!r} is not an http(s) URL")
    return urls


def check_field_specs(fields: dict[str, str]) -> dict[str, str]:
    """`fields` if every spec parses and its selector is CSS, else a `ValueError`."""
    for spec in fields.values():
        parsed = FieldSpec.parse(spec)
        if parsed.selector:
            check_css(parsed.selector)
        elif parsed.attr is None:
            raise ValueError("an empty field spec selects nothing")
    return fields


class ListingParams(FetchParams):
    """The pages, how to read items off them, and (`FetchParams`) how to fetch them."""

    urls: list[HttpUrl] = Field(min_length=1)
    item_selector: str = Field(min_length=1, description='CSS, e.g. "article.listing"')
    fields: dict[str, str] = Field(min_length=1, description="field name -> field spec")
    key_field: str
    next_page_selector: str | None = None
    max_pages: int = Field(default=10, ge=1, le=1000)
    limit: int | None = Field(default=None, ge=1)

    @field_validator("urls")
    @classmethod
    def _urls_are_http(cls, urls: list[str]) -> list[str]:
        return check_http_urls(urls)

    @field_validator("item_selector", "next_page_selector")
    @classmethod
    def _selector_is_css(cls, selector: str | None) -> str | None:
        return None if selector is None else check_css(selector)

    @field_validator("fields")
    @classmethod
    def _field_specs_parse(cls, fields: dict[str, str]) -> dict[str, str]:
        return check_field_specs(fields)

    @model_validator(mode="after")
    def _key_field_is_a_field(self) -> Self:
        if self.key_field not in self.fields:
            raise ValueError(f"key_field {self.key_field!r} is not one of fields")
        return self

    def field_specs(self) -> dict[str, FieldSpec]:
        return {name: FieldSpec.parse(spec) for name, spec in self.fields.items()}
