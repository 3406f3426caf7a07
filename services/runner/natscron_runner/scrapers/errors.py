"""How a scrape fails. The runner retries any failure except the permanent ones."""

from natscron_shared.contract.errors import NatscronError


class ScrapeError(NatscronError):
    code = "scrape_error"


class PermanentScrapeError(ScrapeError):
    """Retrying cannot help (bad input, a 4xx answer): the job fails at once."""

    code = "permanent_scrape_error"


class InvalidParamsError(PermanentScrapeError):
    code = "invalid_params"

    def __init__(self, scraper: str, detail: str) -> None:
        super().__init__(f"invalid params for scraper {scraper!r}: {detail}")
        self.scraper = scraper


class TransientScrapeError(ScrapeError):
    """The source had trouble (5xx, connection error, timeout); a later attempt may work."""

    code = "transient_scrape_error"


class CheckpointTooLargeError(PermanentScrapeError):
    """A scrape's state is too big for a checkpoint: it must keep less, or fail."""

    code = "checkpoint_too_large"


RETRYABLE_CLIENT_STATUSES = (408, 429)


def http_status_error(url: str, status: int) -> ScrapeError | None:
    """How an HTTP answer fails a scrape: 5xx, 408 and 429 transient, other 4xx permanent."""
    if status >= 500 or status in RETRYABLE_CLIENT_STATUSES:
        return TransientScrapeError(f"{url} answered HTTP {status}")
    if status >= 400:
        return PermanentScrapeError(f"{url} answered HTTP {status}")
    return None
