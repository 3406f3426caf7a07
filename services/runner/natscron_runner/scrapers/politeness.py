"""The seam between scrapers and polite fetching: every page load asks first.

A scraper wraps each fetch of a page in `async with context.polite.fetching(url) as
permit:` and reports the answer with `permit.report(status, retry_after)`. The runner's
implementation decides when a host may be asked again (shared limits, robots.txt,
`Retry-After`); `NO_POLITENESS`, the default, lets every fetch through at once.
"""

import contextlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Protocol


class FetchPermit(Protocol):
    def report(self, status: int, retry_after: str | None = None) -> None:
        """What the host answered (a 429 or 503 with `Retry-After` slows the next fetches)."""


class Politeness(Protocol):
    def fetching(self, url: str) -> AbstractAsyncContextManager[FetchPermit]:
        """Wait until `url` may be fetched, and hold the permission while it is."""


class _AnyAnswer:
    def report(self, status: int, retry_after: str | None = None) -> None:
        del status, retry_after


class NoPoliteness:
    """Fetches at once, and ignores what the host answers."""

    @contextlib.asynccontextmanager
    async def fetching(self, url: str) -> AsyncIterator[FetchPermit]:
        del url
        yield _AnyAnswer()


NO_POLITENESS: Politeness = NoPoliteness()
