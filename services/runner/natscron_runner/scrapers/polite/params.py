"""What a schedule may say about how its pages are fetched: the params every fetching
scraper shares (`http`, `crawl`, `browser`, `cookie_scan`, and any scraper that subclasses
`FetchParams`)."""

import re
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")
"""An HTTP field name (RFC 9110's token)."""
COOKIE_NAME = HEADER_NAME
PROXY_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
RESERVED_HEADERS = {
    "user-agent": "give it as user_agent",
    "cookie": "give cookies as cookies",
    "proxy-authorization": "proxy credentials come from the runners' settings",
    "host": "the host is the URL's",
}
MAX_HEADERS = 50
MAX_VALUE_CHARS = 4096


def _printable(value: str, what: str) -> str:
    if len(value) > MAX_VALUE_CHARS or any(c in value for c in "\r\n\0"):
        raise ValueError(f"{what} holds a line break or is over {MAX_VALUE_CHARS} characters")
    return value


class FetchParams(BaseModel):
    """How to fetch: user agent, headers, cookies, proxy, robots.txt and pace.

    Defaults are polite: robots.txt obeyed, at most `NATSCRON_HOST_MAX_IN_FLIGHT` requests
    in flight per host across all runners, and the stricter of `max_requests_per_second`
    and `NATSCRON_HOST_MAX_REQUESTS_PER_SECOND`, if either is set."""

    model_config = ConfigDict(extra="forbid")

    user_agent: str | None = Field(
        default=None,
        min_length=1,
        max_length=512,
        description="the User-Agent header; default: the runners' NATSCRON_USER_AGENT",
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        max_length=MAX_HEADERS,
        description="extra request headers (not User-Agent, Cookie, Host, Proxy-Authorization)",
    )
    cookies: dict[str, str] = Field(
        default_factory=dict, max_length=MAX_HEADERS, description="cookies sent to every host"
    )
    proxy: str | None = Field(
        default=None,
        pattern=PROXY_NAME_PATTERN,
        description="the name of a proxy: its URL, credentials included, is the runners'"
        " NATSCRON_PROXY_<NAME> (upper-cased, '-' as '_'), never in the schedule",
    )
    obey_robots: bool = Field(
        default=True,
        description="false: fetch what robots.txt disallows (logged with each run)",
    )
    max_requests_per_second: float | None = Field(
        default=None,
        gt=0,
        le=100,
        description="per host, across all runners; the stricter of this and the runners'"
        " NATSCRON_HOST_MAX_REQUESTS_PER_SECOND applies",
    )

    @field_validator("user_agent")
    @classmethod
    def _user_agent_is_one_line(cls, value: str | None) -> str | None:
        return None if value is None else _printable(value, "user_agent")

    @field_validator("headers")
    @classmethod
    def _headers_are_fields(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            if not HEADER_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not an HTTP header name")
            reserved = RESERVED_HEADERS.get(name.lower())
            if reserved is not None:
                raise ValueError(f"header {name!r} is not allowed here: {reserved}")
            _printable(value, f"header {name!r}")
        return headers

    @field_validator("cookies")
    @classmethod
    def _cookies_are_pairs(cls, cookies: dict[str, str]) -> dict[str, str]:
        for name, value in cookies.items():
            if not COOKIE_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a cookie name")
            if ";" in value or "," in value or " " in value:
                raise ValueError(f"cookie {name!r} holds ';', ',' or a space")
            _printable(value, f"cookie {name!r}")
        return cookies

    @model_validator(mode="after")
    def _headers_are_distinct(self) -> Self:
        lowered = [name.lower() for name in self.headers]
        if len(set(lowered)) != len(lowered):
            raise ValueError("headers names one header twice (names are case-insensitive)")
        return self
