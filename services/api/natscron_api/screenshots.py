"""Screenshots of failed browser scrapes, as runners keep them in KV `screenshots`
(`<job_id>.<attempt>`, a JPEG each). Served over HTTP only: a picture is no NATS reply."""

from dataclasses import dataclass

from natscron_api.errors import ApiError
from natscron_api.live_state import LiveState
from natscron_api.queries import Queries
from natscron_shared.contract import names


@dataclass(frozen=True)
class Screenshot:
    job_id: str
    attempt: int
    jpeg: bytes


class Screenshots:
    def __init__(self, queries: Queries, live: LiveState) -> None:
        self._queries = queries
        self._live = live

    async def of(self, job_id: str, attempt: int | None = None) -> Screenshot:
        """That attempt's screenshot, or by default the newest attempt's that has one."""
        execution = await self._queries.execution(job_id)
        attempts = [attempt] if attempt is not None else range(execution.attempt, 0, -1)
        for number in attempts:
            jpeg = await self._live.get(names.KV_SCREENSHOTS, names.screenshot_key(job_id, number))
            if jpeg:
                return Screenshot(job_id, number, jpeg)
        which = f"attempt {attempt} of job" if attempt is not None else "job"
        raise ApiError(
            "no_screenshot",
            f"{which} {job_id!r} has no screenshot (only failed browser scrapes keep one,"
            " for 14 days)",
        )
