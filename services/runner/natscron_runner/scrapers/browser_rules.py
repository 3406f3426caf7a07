"""A scrape's fetch rules as the options of its browser context: the user agent, the extra
headers and the proxy (its server, and the credentials the runner's settings hold), so a
browser scrape sends what an `http` scrape of the same schedule sends. Cookies go in the
context's jar as each page loads (`page_tools.PageLoads`)."""

from typing import Any
from urllib.parse import unquote, urlsplit

from playwright.async_api import ProxySettings

from natscron_runner.scrapers.polite import FetchRules


def proxy_settings(proxy_url: str) -> ProxySettings:
    """`http://user:pass@host:3128` as Playwright's proxy: the server without the
    credentials, and the credentials (percent-escapes decoded) apart."""
    parts = urlsplit(proxy_url)
    server = f"{parts.scheme or 'http'}://{parts.netloc.rpartition('@')[2]}"
    settings = ProxySettings(server=server)
    if parts.username is not None:
        settings["username"] = unquote(parts.username)
        settings["password"] = unquote(parts.password or "")
    return settings


def context_options(rules: FetchRules) -> dict[str, Any]:
    """`browser.new_context` options. Chromium then sends every request through the proxy,
    loopback ones too (Playwright's default), as httpx does."""
    options: dict[str, Any] = {
        "user_agent": rules.user_agent,
        "extra_http_headers": dict(rules.headers),
    }
    if rules.proxy_url is not None:
        options["proxy"] = proxy_settings(rules.proxy_url)
    return options
