"""Screenshots of failed browser scrapes, kept with the run in KV `screenshots`.

Key `<job_id>.<attempt>`, value the JPEG; the bucket's TTL is the 14 days EVENTS keeps a
job, and the API serves them (`GET /api/v1/executions/{job_id}/screenshot`). Keeping one
is best effort: one too large, a full bucket or NATS trouble is logged and counted, and
the attempt ends as it would have anyway.
"""

import logging
from collections.abc import Awaitable, Callable

import nats.errors
from nats.js.kv import KeyValue
from prometheus_client import Counter

from natscron_shared.contract import names
from natscron_shared.nats.jetstream_layout import SCREENSHOT_MAX_BYTES

log = logging.getLogger(__name__)


class ScreenshotStore:
    def __init__(self, bucket: KeyValue, outcomes: Counter) -> None:
        self._bucket = bucket
        self._outcomes = outcomes

    def keeper(self, job_id: str, attempt: int) -> Callable[[bytes], Awaitable[None]]:
        """What a scrape of this attempt calls with its JPEG (`ScrapeContext.keep_screenshot`)."""

        async def keep(jpeg: bytes) -> None:
            await self.keep(job_id, attempt, jpeg)

        return keep

    async def keep(self, job_id: str, attempt: int, jpeg: bytes) -> None:
        if len(jpeg) > SCREENSHOT_MAX_BYTES:
            log.warning(
                "job %s attempt %d: not keeping a screenshot of %d bytes (at most %d)",
                job_id,
                attempt,
                len(jpeg),
                SCREENSHOT_MAX_BYTES,
            )
            self._outcomes.labels("too_large").inc()
            return
        try:
            await self._bucket.put(names.screenshot_key(job_id, attempt), jpeg)
        except (nats.errors.Error, TimeoutError) as exc:  # a full bucket is an API error
            log.warning("job %s attempt %d: screenshot not kept: %r", job_id, attempt, exc)
            self._outcomes.labels("failed").inc()
            return
        self._outcomes.labels("kept").inc()
