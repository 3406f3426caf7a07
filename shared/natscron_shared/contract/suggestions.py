""" "Did you mean": the known names closest to a misspelt one (a field, a scraper, an id)."""

import difflib
from collections.abc import Iterable

LEAST_PART = 3
"""A name this short is no telling part of another."""


def closest(word: str, choices: Iterable[str], n: int = 1) -> list[str]:
    """The `n` known names most like `word`; failing that, those it is a part of (`cron` of
    `cron_expression`), shortest first."""
    known = sorted(set(choices))
    close = difflib.get_close_matches(word, known, n=n)
    if close or len(word) < LEAST_PART:
        return close
    return sorted((name for name in known if word in name), key=len)[:n]


def did_you_mean(word: str, choices: Iterable[str], n: int = 1) -> str:
    """` (did you mean 'x'?)`, or "" when nothing is close."""
    close = closest(word, choices, n)
    if not close:
        return ""
    return f" (did you mean {' or '.join(repr(name) for name in close)}?)"
