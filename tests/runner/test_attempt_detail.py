"""What an attempt's final event carries beyond its status: a traceback cut to its bounds
(innermost frames and the error kept), and scraper metadata refused, with a reason that
is counted and stored, when it is not JSON, too big, or not storable in MongoDB."""

from datetime import UTC, datetime
from typing import Any

import pytest

from natscron_runner.attempt_detail import bounded_traceback, checked_metadata
from natscron_shared.contract.attempts import (
    MAX_METADATA_BYTES,
    MAX_TRACEBACK_CHARS,
    MAX_TRACEBACK_LINES,
    REFUSED_METADATA_KEY,
)


def raised(depth: int, message: str = "deep down") -> Exception:
    def dive(level: int) -> None:
        if level == 0:
            raise ValueError(message)
        dive(level - 1)

    try:
        dive(depth)
    except ValueError as exc:
        return exc
    raise AssertionError("dive did not raise")


def test_a_short_traceback_is_kept_whole() -> None:
    text = bounded_traceback(raised(1))
    assert text.startswith("Traceback (most recent call last):")
    assert "in dive" in text
    assert text.splitlines()[-1] == "ValueError: deep down"


def test_a_long_traceback_keeps_its_last_lines_within_both_bounds() -> None:
    wide = bounded_traceback(raised(3, "x" * 10_000))
    assert len(wide) == MAX_TRACEBACK_CHARS
    assert wide.endswith("x" * 100)

    tall = bounded_traceback(raised(3, "\n".join(f"line {n}" for n in range(200))))
    assert len(tall.splitlines()) == MAX_TRACEBACK_LINES
    assert tall.splitlines()[-1] == "line 199"


def check(metadata: dict[str, Any]) -> tuple[dict[str, Any] | None, list[str]]:
    refused: list[str] = []
    return checked_metadata(metadata, "job-1", refused.append), refused


def test_json_metadata_is_kept_as_plain_json() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert check({"pages": 3, "at": at, "tags": ("a", "b")}) == (
        {"pages": 3, "at": "2026-01-02T03:04:05Z", "tags": ["a", "b"]},
        [],
    )
    assert check({}) == (None, [])


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        ({"blob": "x" * MAX_METADATA_BYTES}, "too_large"),
        ({"thing": object()}, "not_json"),
        ({"$where": 1}, "unstorable"),
        ({"nested": [{"a.b": 1}]}, "unstorable"),
        ({"huge": 2**64}, "unstorable"),
    ],
)
def test_metadata_that_cannot_be_stored_is_refused_with_its_reason(
    metadata: dict[str, Any], reason: str
) -> None:
    kept, refused = check(metadata)
    assert refused == [reason]
    assert kept is not None and set(kept) == {REFUSED_METADATA_KEY}
    assert kept[REFUSED_METADATA_KEY]
