"""Which links the crawl follows: hosts (with their subdomains) and URL patterns."""

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from natscron_runner.scrapers.crawl_params import CrawlParams


@dataclass(frozen=True)
class Scope:
    domains: tuple[str, ...]
    allow: tuple[re.Pattern[str], ...]
    deny: tuple[re.Pattern[str], ...]

    @classmethod
    def of(cls, params: CrawlParams, seeds: list[str]) -> "Scope":
        """`allowed_domains`, or the (normalised) seeds' hosts."""
        domains = params.allowed_domains
        if domains is None:
            domains = [urlsplit(seed).hostname or "" for seed in seeds]
        return cls(
            domains=tuple(dict.fromkeys(domain for domain in domains if domain)),
            allow=tuple(re.compile(pattern) for pattern in params.allow),
            deny=tuple(re.compile(pattern) for pattern in params.deny),
        )

    def follows(self, url: str) -> bool:
        """For a normalised URL: its host is one of the domains or under one, it matches
        an `allow` pattern (if there are any) and no `deny` pattern."""
        host = urlsplit(url).hostname or ""
        if not any(host == domain or host.endswith("." + domain) for domain in self.domains):
            return False
        if self.allow and not any(pattern.search(url) for pattern in self.allow):
            return False
        return not any(pattern.search(url) for pattern in self.deny)
