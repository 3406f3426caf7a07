"""What an attempt's final event tells beyond its status: a bounded traceback of its
error, and the metadata its scraper reported, checked against the contract's bounds."""

import logging
import traceback
from collections.abc import Callable
from typing import Any

from pydantic_core import PydanticSerializationError, from_json, to_json

from natscron_shared.contract.attempts import (
    MAX_METADATA_BYTES,
    MAX_TRACEBACK_CHARS,
    MAX_TRACEBACK_LINES,
    REFUSED_METADATA_KEY,
)

log = logging.getLogger(__name__)

MIN_INT64, MAX_INT64 = -(2**63), 2**63 - 1


def bounded_traceback(error: BaseException) -> str:
    """The formatted exception (its chain included), cut to its last lines: the innermost
    frames and the error itself. Source lines and the exception's text, no locals."""
    lines = "".join(traceback.format_exception(error)).splitlines()
    return "\n".join(lines[-MAX_TRACEBACK_LINES:])[-MAX_TRACEBACK_CHARS:]


def checked_metadata(
    metadata: dict[str, Any], job_id: str, refuse: Callable[[str], None]
) -> dict[str, Any] | None:
    """The scraper's metadata as plain JSON, None if it reported none. One that is not
    JSON, is too big, or that MongoDB could not store (which would make the recorder set
    the whole event aside) is refused, counted by `refuse(reason)`: the run keeps only why."""
    if not metadata:
        return None
    try:
        encoded = to_json(metadata)
    except (PydanticSerializationError, TypeError, ValueError) as exc:
        return _refused(job_id, refuse, "not_json", f"not JSON: {exc}"[:200])
    if len(encoded) > MAX_METADATA_BYTES:
        detail = f"{len(encoded)} bytes of JSON, over the {MAX_METADATA_BYTES} allowed"
        return _refused(job_id, refuse, "too_large", detail)
    plain: dict[str, Any] = from_json(encoded)
    problem = _unstorable(plain)
    if problem is not None:
        return _refused(job_id, refuse, "unstorable", problem)
    return plain


def _unstorable(value: Any) -> str | None:
    """What MongoDB would refuse in a JSON value: a key starting with `$` or holding a dot
    or NUL, an integer beyond 64 bits."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key.startswith("$") or "." in key or "\0" in key:
                return f"the key {key[:50]!r} cannot be stored"
            problem = _unstorable(item)
            if problem is not None:
                return problem
    elif isinstance(value, list):
        return next((p for p in map(_unstorable, value) if p is not None), None)
    elif isinstance(value, int) and not MIN_INT64 <= value <= MAX_INT64:
        return "an integer beyond 64 bits cannot be stored"
    return None


def _refused(
    job_id: str, refuse: Callable[[str], None], reason: str, detail: str
) -> dict[str, Any]:
    refuse(reason)
    log.warning("job %s: the scraper's metadata was refused (%s)", job_id, detail)
    return {REFUSED_METADATA_KEY: detail}
