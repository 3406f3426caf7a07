"""The scraper API: what a scraper receives, what it yields, how it checks its params."""

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from natscron_runner.scrapers.errors import InvalidParamsError
from natscron_runner.scrapers.polite.politeness import Politeness, local_politeness
from natscron_shared.contract.errors import plain_message
from natscron_shared.contract.messages import ScrapedItem

ParamsT = TypeVar("ParamsT", bound=BaseModel)


def _ignore_skip(reason: str) -> None:
    del reason


def _ignore_page_skip(url: str, reason: str) -> None:
    del url, reason


class Checkpoint(Protocol):
    """Where a resumable scrape keeps its progress, so that the next delivery or attempt of
    the same job resumes instead of starting over (the runner's: KV `checkpoints`).

    `load` before yielding anything: the state an earlier delivery saved, or None. `save`
    returns once every item yielded before it is stored, then stores `state` (a JSON
    object); a crash after it loses nothing yielded before it."""

    async def load(self) -> dict[str, Any] | None: ...

    async def save(self, state: dict[str, Any]) -> None: ...


class MemoryCheckpoint:
    """A checkpoint that lives as long as the scrape: a scraper run outside a runner."""

    def __init__(self) -> None:
        self.state: dict[str, Any] | None = None

    async def load(self) -> dict[str, Any] | None:
        return self.state

    async def save(self, state: dict[str, Any]) -> None:
        self.state = state


async def _drop_screenshot(jpeg: bytes) -> None:
    del jpeg


@dataclass(frozen=True)
class ScrapeContext:
    """Which execution a scrape belongs to, and what the runner lends it:

    - `skip(reason)` counts an item left out, `skip_page(url, reason)` a page;
    - `polite`: the gate every request passes (robots.txt, per-host limits shared by all
      runners, backoffs); in-process only when the scraper runs outside a runner;
    - `checkpoint`: where a resumable scrape saves its progress;
    - `keep_screenshot(jpeg)` stores a picture of a failure with the run (the runner
      bounds its size);
    - `metadata` is the scraper's to fill with a small JSON object about the run (pages
      fetched, a scan id, what it found): whatever it holds when the attempt ends, even by
      an error, is stored with the run (at most `MAX_METADATA_BYTES` of JSON)."""

    job_id: str
    scheduled_job_id: str | None
    attempt: int
    skip: Callable[[str], None] = field(default=_ignore_skip, compare=False)
    skip_page: Callable[[str, str], None] = field(default=_ignore_page_skip, compare=False)
    polite: Politeness = field(default_factory=local_politeness, compare=False)
    checkpoint: Checkpoint = field(default_factory=MemoryCheckpoint, compare=False)
    keep_screenshot: Callable[[bytes], Awaitable[None]] = field(
        default=_drop_screenshot, compare=False
    )
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)


class Scraper(Protocol):
    """Implement `scrape` as an async generator (`async def` with `yield`).

    Raise `PermanentScrapeError` (or `InvalidParamsError`) when retrying cannot help;
    any other exception is retried while the job has retries left.

    Optionally, a class attribute `params_model`: the pydantic model `scrape` parses its
    params with (`parse_params`). Its JSON schema is what the runner advertises in the
    scraper catalogue, so `apply` and `jobs.trigger` refuse bad params before anything is
    written; give it `extra="forbid"` so a misspelt key is refused too. Without one, any
    params object is accepted until the scrape runs. The first line of the class's
    docstring is the scraper's description in the catalogue.

    Optionally, `async def aclose(self)`: the runner calls it as it stops, to let go of
    what the scraper keeps between jobs (a browser).
    """

    def scrape(
        self, params: dict[str, Any], context: ScrapeContext
    ) -> AsyncIterator[ScrapedItem]: ...


def parse_params(scraper: str, model: type[ParamsT], params: dict[str, Any]) -> ParamsT:
    """Validate `params` against `model`, or raise a permanent `InvalidParamsError`."""
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        detail = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'params'}: {plain_message(error)}"
            for error in exc.errors()
        )
        raise InvalidParamsError(scraper, detail) from exc
