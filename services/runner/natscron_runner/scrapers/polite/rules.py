"""A schedule's fetch params resolved against the runner's settings: what one scrape's
requests carry, and the limits polite fetching applies to them."""

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from natscron_runner.scrapers.errors import PermanentScrapeError
from natscron_runner.scrapers.polite.params import FetchParams
from natscron_shared.runtime.settings import Settings

log = logging.getLogger(__name__)

PROXY_ENV_PREFIX = "NATSCRON_PROXY_"


@dataclass(frozen=True)
class PoliteSettings:
    """The runner-wide side of polite fetching (`NATSCRON_*`, see `Settings`)."""

    user_agent: str = "natscron/0.1"
    max_in_flight: int = 2
    max_requests_per_second: float | None = None
    max_backoff_seconds: float = 300.0
    robots_cache_seconds: float = 3600.0

    @classmethod
    def of(cls, settings: Settings) -> "PoliteSettings":
        return cls(
            user_agent=settings.user_agent,
            max_in_flight=settings.host_max_in_flight,
            max_requests_per_second=settings.host_max_requests_per_second,
            max_backoff_seconds=settings.host_max_backoff_seconds,
            robots_cache_seconds=settings.robots_cache_seconds,
        )


@dataclass(frozen=True)
class FetchRules:
    """What a scrape's requests carry and how they are paced. `proxy_url` may hold
    credentials: it is never logged, stored or put in an error."""

    user_agent: str
    headers: Mapping[str, str] = field(default_factory=dict)
    cookies: Mapping[str, str] = field(default_factory=dict)
    proxy_url: str | None = field(default=None, repr=False)
    obey_robots: bool = True
    min_interval_seconds: float | None = None
    """Between two request starts to one host, across all runners; None: no rate limit."""

    def request_headers(self) -> dict[str, str]:
        """The schedule's headers and the User-Agent (cookies go in a client's jar)."""
        return {**self.headers, "User-Agent": self.user_agent}


def proxy_variable(name: str) -> str:
    """`corp-eu` -> `NATSCRON_PROXY_CORP_EU`."""
    return PROXY_ENV_PREFIX + name.upper().replace("-", "_")


def _interval(*rates: float | None) -> float | None:
    """The longest interval between starts the given rates (requests/s) allow."""
    given = [rate for rate in rates if rate is not None]
    return 1.0 / min(given) if given else None


def resolve_rules(
    params: FetchParams, settings: PoliteSettings, environ: Mapping[str, str], job_id: str
) -> FetchRules:
    """Raises `PermanentScrapeError` for a proxy the runner has no URL for."""
    proxy_url = None
    if params.proxy is not None:
        variable = proxy_variable(params.proxy)
        proxy_url = environ.get(variable)
        if not proxy_url:
            raise PermanentScrapeError(
                f"proxy {params.proxy!r} is not configured on runner: set {variable}"
            )
    if not params.obey_robots:
        log.warning("job %s does not obey robots.txt: its params say obey_robots: false", job_id)
    return FetchRules(
        user_agent=params.user_agent or settings.user_agent,
        headers=dict(params.headers),
        cookies=dict(params.cookies),
        proxy_url=proxy_url,
        obey_robots=params.obey_robots,
        min_interval_seconds=_interval(
            params.max_requests_per_second, settings.max_requests_per_second
        ),
    )
