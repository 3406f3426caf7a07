"""robots.txt: fetched once per origin per runner, kept `robots_cache_seconds`, obeyed.

Following RFC 9309: a 2xx is parsed (its first 512 KiB); a 4xx but 429, or too many
redirects, means no rules (fetch anything); a 5xx, a 429 or a network failure means the
host cannot say, so nothing is fetched there (a `TransientScrapeError`: the job retries
later) and nothing is cached. Matching is protego's (Scrapy's parser): the longest
matching rule wins, `*` and `$` are understood, and a group applies when its product
token appears in the user agent. `Crawl-delay` and `Request-rate`, where given, pace the
host like a rate limit (at most 60 s apart).
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from protego import Protego

from natscron_runner.scrapers.errors import TransientScrapeError
from natscron_runner.scrapers.polite.hosts import origin_of
from natscron_runner.scrapers.polite.rules import FetchRules
from natscron_shared.runtime.clock import Clock

log = logging.getLogger(__name__)

ROBOTS_PATH = "/robots.txt"
MAX_ROBOTS_CHARS = 512 * 1024
MAX_ROBOTS_DELAY_SECONDS = 60.0


@dataclass(frozen=True)
class RobotsAnswer:
    status: int
    text: str


RobotsFetch = Callable[[str, FetchRules], Awaitable[RobotsAnswer]]
"""GET a robots.txt URL with a scrape's rules; raise `TransientScrapeError` when unreachable."""


@dataclass(frozen=True)
class Robots:
    """One origin's rules; `parser` None: it has none (no robots.txt, or a 4xx)."""

    parser: Protego | None
    fetched_at: float

    def allows(self, url: str, user_agent: str) -> bool:
        return self.parser is None or self.parser.can_fetch(url, user_agent)

    def interval_seconds(self, user_agent: str) -> float | None:
        """The pause between two requests its Crawl-delay or Request-rate asks for."""
        if self.parser is None:
            return None
        delay = self.parser.crawl_delay(user_agent)
        rate = self.parser.request_rate(user_agent)
        if rate is not None and rate.requests > 0:
            per_request = rate.seconds / rate.requests
            delay = per_request if delay is None else max(delay, per_request)
        return None if not delay else min(float(delay), MAX_ROBOTS_DELAY_SECONDS)


def has_no_rules(status: int) -> bool:
    """A final answer that means "no robots.txt": a 3xx (redirects ran out), a 4xx but 429."""
    return 300 <= status < 500 and status != 429


def is_robots_url(url: str) -> bool:
    return urlsplit(url).path == ROBOTS_PATH


class RobotsBook:
    """The robots.txt of every origin this runner fetched from, each fetched once per TTL
    (concurrent scrapes of one origin wait for the same fetch)."""

    def __init__(self, fetch: RobotsFetch, ttl_seconds: float, clock: Clock) -> None:
        self._fetch = fetch
        self._ttl = ttl_seconds
        self._clock = clock
        self._known: dict[str, Robots] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def of(self, url: str, rules: FetchRules) -> Robots:
        origin = origin_of(url)
        async with self._locks.setdefault(origin, asyncio.Lock()):
            known = self._known.get(origin)
            now = self._clock.now().timestamp()
            if known is not None and now - known.fetched_at < self._ttl:
                return known
            robots = await self._fetched(origin, rules, now)
            self._known[origin] = robots
            return robots

    async def _fetched(self, origin: str, rules: FetchRules, now: float) -> Robots:
        answer = await self._fetch(origin + ROBOTS_PATH, rules)
        if 200 <= answer.status < 300:
            log.info("robots.txt of %s fetched (%d characters)", origin, len(answer.text))
            return Robots(Protego.parse(answer.text[:MAX_ROBOTS_CHARS]), now)
        if has_no_rules(answer.status):
            log.info("robots.txt of %s: HTTP %d, so no rules", origin, answer.status)
            return Robots(None, now)
        raise TransientScrapeError(
            f"robots.txt of {origin} answered HTTP {answer.status}: fetching nothing there"
            " until it answers"
        )
