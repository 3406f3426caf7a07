"""Moments given as ISO 8601 text, as the OpenAPI document and the JSON schemas say
(`format: date-time`).

pydantic also reads a number, or a text of digits, as seconds since 1970: `?until=0.5` would
mean 1970-01-01T00:00:00.5Z, which no caller means. `iso_text` refuses them before pydantic
parses; a `datetime` (or a `date` from YAML) passes as it is.
"""

import re

from pydantic import BeforeValidator

ISO_DATE_START = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_text(value: object) -> object:
    if isinstance(value, int | float) or (
        isinstance(value, str) and not ISO_DATE_START.match(value)
    ):
        raise ValueError("must be an ISO 8601 date-time text, such as 2026-01-01T02:00:00Z")
    return value


iso_text = BeforeValidator(_iso_text)
"""Put in `Annotated[datetime, iso_text]` (before any other validator of the type)."""
