"""The project's error hierarchy. Each error has a stable `code` for error replies."""


class NatscronError(Exception):
    code = "internal_error"

    def __str__(self) -> str:
        return f"natscron: {self.detail}"

    @property
    def detail(self) -> str:
        """The message without the `natscron:` prefix, for error replies."""
        return super().__str__()


class BadRequestError(NatscronError):
    """The message could not be parsed or validated."""

    code = "bad_request"


class MessageTooLargeError(BadRequestError):
    code = "message_too_large"


class UnknownScheduledJobError(NatscronError):
    code = "unknown_scheduled_job"

    def __init__(self, scheduled_job_id: str) -> None:
        super().__init__(f"no scheduled job with id {scheduled_job_id!r}")
        self.scheduled_job_id = scheduled_job_id


class UnknownScraperError(NatscronError):
    code = "unknown_scraper"

    def __init__(self, scraper: str) -> None:
        super().__init__(f"no scraper registered under the name {scraper!r}")
        self.scraper = scraper


class UnknownJobError(NatscronError):
    code = "unknown_job"


class NotRetryableError(NatscronError):
    """Only a job that ended `failed` or `cancelled` can be retried."""

    code = "not_retryable"
