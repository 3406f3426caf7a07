"""A scraper that scrapes nothing: for tests, benchmarks and trying the stack out."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from natscron_runner.scrapers.base import ScrapeContext, parse_params
from natscron_shared.contract.messages import ScrapedItem


class NoopParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: int = Field(default=0, ge=0, le=1_000_000)
    delay_seconds: float = Field(default=0.0, ge=0)
    fail_attempts: int = Field(
        default=0, ge=0, description="attempts 1..fail_attempts raise, to exercise retries"
    )
    hold_seconds: float = Field(
        default=0.0,
        ge=0,
        description="wait this long after yielding the items: a slow scrape that has"
        " already produced something, to cancel or overlap",
    )
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="reported as the run's metadata, by every attempt"
    )


class NoopScraper:
    """Waits `delay_seconds`, fails the first `fail_attempts` attempts, yields `items` items,
    then waits `hold_seconds`; reports `metadata`."""

    name = "noop"
    params_model = NoopParams

    async def scrape(
        self, params: dict[str, Any], context: ScrapeContext
    ) -> AsyncIterator[ScrapedItem]:
        parsed = parse_params(self.name, NoopParams, params)
        context.metadata.update(parsed.metadata)
        if parsed.delay_seconds:
            await asyncio.sleep(parsed.delay_seconds)
        if context.attempt <= parsed.fail_attempts:
            raise RuntimeError(
                f"noop fails attempt {context.attempt} of {parsed.fail_attempts} on purpose"
            )
        for index in range(parsed.items):
            yield ScrapedItem(
                key=f"noop-{context.job_id}-{index}",
                data={"index": index, "attempt": context.attempt},
            )
        if parsed.hold_seconds:
            await asyncio.sleep(parsed.hold_seconds)
