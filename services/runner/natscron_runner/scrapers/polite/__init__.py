"""Polite fetching, shared by every runner: robots.txt, request slots and a rate per host,
429/503 backoffs, and a schedule's user agent, headers, cookies and proxy.

A scraper's params subclass `FetchParams`; it gets its `FetchRules` from
`context.polite.rules(params, context.job_id)` and sends each request inside
`context.polite.fetching(url, rules)` (or through `context.polite.call`).
"""

from natscron_runner.scrapers.polite.disallowed import (
    SKIP_ROBOTS,
    RobotsDisallowedError,
    all_disallowed,
)
from natscron_runner.scrapers.polite.params import FetchParams
from natscron_runner.scrapers.polite.politeness import (
    Answer,
    Permit,
    Politeness,
    local_politeness,
)
from natscron_runner.scrapers.polite.rules import FetchRules, PoliteSettings

__all__ = [
    "SKIP_ROBOTS",
    "Answer",
    "FetchParams",
    "FetchRules",
    "Permit",
    "PoliteSettings",
    "Politeness",
    "RobotsDisallowedError",
    "all_disallowed",
    "local_politeness",
]
