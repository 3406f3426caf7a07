"""Fetching one page through polite fetching, with httpx: what `http` and `crawl` share.

Redirects are followed here, hop by hop, not by httpx: each hop is a request to a host
like any other, so robots.txt, the host's slots, pace and backoff apply to it too.
"""

from dataclasses import dataclass
from urllib.parse import urljoin

import httpx

from natscron_runner.scrapers.errors import PermanentScrapeError, TransientScrapeError
from natscron_runner.scrapers.listing_params import is_http_url
from natscron_runner.scrapers.polite import Answer, FetchRules, Politeness

MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class Fetched:
    url: str
    """Where the page was found, after redirects."""
    status: int
    content_type: str
    text: str

    @property
    def is_html(self) -> bool:
        kind = self.content_type.split(";", 1)[0].strip().lower()
        return kind in ("", "text/html", "application/xhtml+xml")


class TooManyRedirectsError(PermanentScrapeError):
    code = "too_many_redirects"


def polite_client(rules: FetchRules, timeout_seconds: float) -> httpx.AsyncClient:
    """A client carrying the scrape's user agent, headers, cookies and proxy."""
    return httpx.AsyncClient(
        headers=rules.request_headers(),
        cookies=dict(rules.cookies),
        proxy=rules.proxy_url,
        timeout=timeout_seconds,
        follow_redirects=False,
    )


async def fetch_page(
    client: httpx.AsyncClient, polite: Politeness, url: str, rules: FetchRules
) -> Fetched:
    """GET `url` politely, following up to `MAX_REDIRECTS` redirects; any final status is
    returned. Network trouble and timeouts are a `TransientScrapeError`; a URL robots.txt
    disallows (at any hop) a `RobotsDisallowedError`."""
    start = url
    for _ in range(MAX_REDIRECTS + 1):

        async def get(target: str = url) -> httpx.Response:
            return await client.get(target)

        try:
            response = await polite.call(url, rules, get, _answer)
        except httpx.TimeoutException as exc:
            raise TransientScrapeError(f"timed out fetching {url}") from exc
        except httpx.TransportError as exc:
            raise TransientScrapeError(
                f"could not fetch {url}: {type(exc).__name__}: {exc}"
            ) from exc
        location = response.headers.get("location")
        if response.status_code in REDIRECT_STATUSES and location:
            target = urljoin(url, location.strip())
            if not is_http_url(target):
                raise PermanentScrapeError(f"{url} redirects to {target!r}, not an http(s) URL")
            url = target
            continue
        return Fetched(
            url=url,
            status=response.status_code,
            content_type=response.headers.get("content-type", ""),
            text=response.text,
        )
    raise TooManyRedirectsError(f"{start} redirects more than {MAX_REDIRECTS} times")


def _answer(response: httpx.Response) -> Answer:
    return response.status_code, response.headers.get("retry-after")
