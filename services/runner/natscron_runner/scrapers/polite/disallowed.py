"""When robots.txt says no: the error `fetching` raises (nothing was sent), the reason a
scraper counts the page skipped under, and the error of a run it left nothing to fetch."""

from natscron_runner.scrapers.errors import PermanentScrapeError

SKIP_ROBOTS = "robots_txt"
"""`ScrapeContext.skip_page` reason of a page robots.txt disallows."""


class RobotsDisallowedError(PermanentScrapeError):
    """robots.txt disallows the URL for the scrape's user agent: it was not fetched."""

    code = "robots_disallowed"

    def __init__(self, url: str) -> None:
        super().__init__(f"robots.txt disallows {url}")
        self.url = url


def all_disallowed(disallowed: list[str]) -> PermanentScrapeError:
    """The run fetched nothing: robots.txt disallowed every URL it had."""
    shown = ", ".join(disallowed[:3]) + (", ..." if len(disallowed) > 3 else "")
    return PermanentScrapeError(
        f"robots.txt disallows every URL of this run ({len(disallowed)}: {shown});"
        " params obey_robots: false would fetch them anyway"
    )
