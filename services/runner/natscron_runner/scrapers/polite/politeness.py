"""Polite fetching: the gate every request of a scraper passes, whatever sends it.

    rules = context.polite.rules(params, context.job_id)  # params: a FetchParams
    async with context.polite.fetching(url, rules) as permit:
        response = await send_the_request()             # httpx, a browser's page.goto ...
        permit.report(response.status, response.headers.get("retry-after"))

`fetching` raises `RobotsDisallowedError` (nothing was sent) when robots.txt disallows
the URL, then waits while the host is backed off, for one of its request slots, and for
its turn under a rate limit; the slot is held until the block ends. Reporting a 429 or
503 holds every runner off the host (its Retry-After, or doubling from 1 s, at most
`max_backoff_seconds`). `call` does the same around a send function and sends again after
such a backoff, up to `BACKOFF_RETRIES` times. Nothing here depends on an HTTP client but
the robots.txt fetch itself, which uses httpx with the scrape's user agent and proxy.
"""

import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TypeVar

import httpx
import nats.errors
from prometheus_client import CollectorRegistry

from natscron_runner.scrapers.errors import PermanentScrapeError, TransientScrapeError
from natscron_runner.scrapers.polite.backoff import BACKOFF_STATUSES
from natscron_runner.scrapers.polite.coordinator import HostCoordinator
from natscron_runner.scrapers.polite.disallowed import RobotsDisallowedError
from natscron_runner.scrapers.polite.hosts import Host
from natscron_runner.scrapers.polite.kv_pace import PaceConflictError
from natscron_runner.scrapers.polite.local_hosts import LocalHosts
from natscron_runner.scrapers.polite.metrics import PoliteMetrics
from natscron_runner.scrapers.polite.params import FetchParams
from natscron_runner.scrapers.polite.robots import (
    RobotsAnswer,
    RobotsBook,
    RobotsFetch,
    has_no_rules,
    is_robots_url,
)
from natscron_runner.scrapers.polite.rules import FetchRules, PoliteSettings, resolve_rules
from natscron_shared.runtime.clock import Clock, SystemClock

log = logging.getLogger(__name__)

R = TypeVar("R")
Answer = tuple[int, str | None]
"""A response's status and its Retry-After header (None if absent)."""
BACKOFF_RETRIES = 3
ROBOTS_TIMEOUT_SECONDS = 30.0
COORDINATION_ERRORS = (nats.errors.Error, TimeoutError, PaceConflictError)


class Permit:
    """A request under way; tell it the answer, so a 429/503 backs every runner off."""

    def __init__(self) -> None:
        self.status: int | None = None
        self.retry_after: str | None = None

    def report(self, status: int, retry_after: str | None = None) -> None:
        self.status = status
        self.retry_after = retry_after


class Politeness:
    def __init__(
        self,
        hosts: HostCoordinator,
        settings: PoliteSettings,
        clock: Clock,
        *,
        environ: Mapping[str, str] | None = None,
        robots_fetch: RobotsFetch | None = None,
        metrics: PoliteMetrics | None = None,
    ) -> None:
        self.hosts = hosts
        self.settings = settings
        self._clock = clock
        self._environ = os.environ if environ is None else environ
        self._robots = RobotsBook(
            robots_fetch or self._fetch_robots, settings.robots_cache_seconds, clock
        )
        self._metrics = metrics or PoliteMetrics.on(CollectorRegistry())

    def rules(self, params: FetchParams, job_id: str) -> FetchRules:
        """The scrape's rules (its proxy's URL from `NATSCRON_PROXY_<NAME>`); raises a
        `PermanentScrapeError` for a proxy this runner has no URL for."""
        return resolve_rules(params, self.settings, self._environ, job_id)

    async def allowed(self, url: str, rules: FetchRules) -> bool:
        """Whether robots.txt lets the scrape fetch `url` (always, if it need not obey)."""
        if not rules.obey_robots or is_robots_url(url):
            return True
        robots = await self._robots.of(url, rules)
        return robots.allows(url, rules.user_agent)

    @contextlib.asynccontextmanager
    async def fetching(self, url: str, rules: FetchRules) -> AsyncIterator[Permit]:
        host = _host(url)
        interval = rules.min_interval_seconds
        if rules.obey_robots and not is_robots_url(url):
            robots = await self._robots.of(url, rules)
            if not robots.allows(url, rules.user_agent):
                raise RobotsDisallowedError(url)
            interval = _longest(interval, robots.interval_seconds(rules.user_agent))
        waited_from = time.monotonic()
        async with contextlib.AsyncExitStack() as stack:
            await self._backed_off(host)
            try:
                await stack.enter_async_context(self.hosts.slot(host, self.settings.max_in_flight))
                await self._backed_off(host)
                if interval is not None:
                    await self._clock.sleep_until(await self.hosts.turn(host, interval))
            except COORDINATION_ERRORS as exc:
                raise _unshared(exc) from exc
            self._metrics.waits.observe(time.monotonic() - waited_from)
            permit = Permit()
            yield permit
            await self._settle(host, permit)

    async def call(
        self,
        url: str,
        rules: FetchRules,
        send: Callable[[], Awaitable[R]],
        answer: Callable[[R], Answer],
    ) -> R:
        """`send` within `fetching`, again after each 429/503 (once the host's backoff is
        over), at most `BACKOFF_RETRIES` more times; returns the last result."""
        retries = 0
        while True:
            async with self.fetching(url, rules) as permit:
                result = await send()
                status, retry_after = answer(result)
                permit.report(status, retry_after)
            if status not in BACKOFF_STATUSES or retries >= BACKOFF_RETRIES:
                return result
            retries += 1
            log.info("%s answered HTTP %d; asking again after the backoff", url, status)

    async def _backed_off(self, host: Host) -> None:
        until = self.hosts.backoff_until(host)
        if until is not None and until > self._clock.now():
            await self._clock.sleep_until(until)

    async def _settle(self, host: Host, permit: Permit) -> None:
        if permit.status is None:
            return
        try:
            if permit.status in BACKOFF_STATUSES:
                self._metrics.backoffs.labels(str(permit.status)).inc()
                until = await self.hosts.back_off(
                    host, permit.status, permit.retry_after, self.settings.max_backoff_seconds
                )
                log.info(
                    "%s answered HTTP %d: every runner waits until %s", host, permit.status, until
                )
            elif permit.status < 400:
                await self.hosts.recovered(host)
        except COORDINATION_ERRORS as exc:
            log.warning("could not share the state of %s: %s", host, exc)

    async def _fetch_robots(self, url: str, rules: FetchRules) -> RobotsAnswer:
        async def get() -> httpx.Response:
            return await client.get(url)

        try:
            async with httpx.AsyncClient(
                headers=rules.request_headers(),
                proxy=rules.proxy_url,
                timeout=ROBOTS_TIMEOUT_SECONDS,
                follow_redirects=True,
            ) as client:
                response = await self.call(url, rules, get, _answer)
        except httpx.HTTPError as exc:
            self._metrics.robots.labels("unreachable").inc()
            raise TransientScrapeError(
                f"could not fetch {url}: {type(exc).__name__}: {exc}"
            ) from exc
        status = response.status_code
        outcome = "none" if has_no_rules(status) else "rules" if status < 300 else "unreachable"
        self._metrics.robots.labels(outcome).inc()
        return RobotsAnswer(status=status, text=response.text if status < 300 else "")


def local_politeness() -> Politeness:
    """In-process only (nothing shared with other runners): a scraper run on its own."""
    return Politeness(LocalHosts(), PoliteSettings(), SystemClock())


def _answer(response: httpx.Response) -> Answer:
    return response.status_code, response.headers.get("retry-after")


def _host(url: str) -> Host:
    try:
        return Host.of(url)
    except ValueError as exc:
        raise PermanentScrapeError(str(exc)) from exc


def _longest(*intervals: float | None) -> float | None:
    given = [interval for interval in intervals if interval is not None]
    return max(given) if given else None


def _unshared(exc: BaseException) -> TransientScrapeError:
    return TransientScrapeError(
        f"polite fetching could not coordinate with the other runners: {type(exc).__name__}: {exc}"
    )
