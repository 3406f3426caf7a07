"""429 and 503: how long a host is left alone, from its Retry-After or by doubling."""

from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from pydantic import AwareDatetime, BaseModel, Field

BACKOFF_STATUSES = frozenset({429, 503})
FIRST_BACKOFF_SECONDS = 1.0
"""Without a usable Retry-After: 1 s, then doubled for each further 429/503 in a row."""


class HostBackoff(BaseModel):
    """KV `host_backoff`, key: the host's token. Every runner waits until `until`."""

    until: AwareDatetime
    strikes: int = Field(ge=1, description="429/503 answers in a row")
    status: int
    by: str = Field(description="the runner that was told")


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """A Retry-After's delay: delta-seconds or an HTTP date; None if absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


def next_backoff(
    previous: HostBackoff | None,
    now: datetime,
    status: int,
    retry_after: str | None,
    cap_seconds: float,
    by: str,
) -> HostBackoff:
    """The backoff after one more 429/503: the host's Retry-After if it gave one, else
    doubling; never beyond `cap_seconds`, never ending before one already announced."""
    strikes = 1 if previous is None else previous.strikes + 1
    delay = retry_after_seconds(retry_after, now)
    if delay is None:
        delay = FIRST_BACKOFF_SECONDS * 2 ** min(strikes - 1, 20)
    until = now + timedelta(seconds=min(delay, cap_seconds))
    if previous is not None and previous.until > until:
        until = previous.until
    return HostBackoff(until=until, strikes=strikes, status=status, by=by)
