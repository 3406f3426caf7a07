"""Reading values out of source documents and rows, which were written by hand-rolled code
over the years: dates as BSON dates or ISO strings, ids as ObjectIds, UUIDs or strings.

Every reader raises `LegacyValueError` with a sentence naming the field; the migration
reports it and skips the document or row.
"""

import hashlib
import re
from datetime import UTC, datetime, tzinfo
from typing import Any

from bson import ObjectId

from natscron_shared.contract.storage import Document

LEGACY_ID_PREFIX = "legacy_"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")
MAX_TOKEN_TAIL = 90
"""Leaves room for the prefix in a 100-character scheduled job id."""
MAX_SCHEDULE_ID = 100
MAX_JOB_ID = 255


class LegacyValueError(ValueError):
    """A legacy field natscron cannot take as it is; the message is a full sentence."""


def legacy_id(document: Document) -> str:
    """The document's `_id` as text, for the report and for derived ids."""
    value = document.get("_id")
    return str(value) if isinstance(value, ObjectId | str) else repr(value)


def derived_id(document: Document) -> str:
    """A natscron id derived from the legacy `_id` only, so every rerun derives the same:
    `legacy_<ObjectId hex>`, `legacy_<string _id>` when that is a token, otherwise
    `legacy_<first 24 hex digits of its SHA-256>`."""
    return hashed_id(LEGACY_ID_PREFIX, legacy_id(document))


def hashed_id(prefix: str, text: str, max_tail: int = MAX_TOKEN_TAIL) -> str:
    """`<prefix><text>` when `text` is a token of at most `max_tail` characters, otherwise
    `<prefix><first 24 hex digits of its SHA-256>`: the same text always gives the same id."""
    if not (_TOKEN.match(text) and len(text) <= max_tail):
        text = hashlib.sha256(text.encode()).hexdigest()[:24]
    return prefix + text


def kept_id(source_id: str) -> str:
    """A source's schedule id as it is when natscron can use it (`daily_for_sale_indy`),
    else derived from it like a legacy `_id`."""
    if _TOKEN.match(source_id) and len(source_id) <= MAX_SCHEDULE_ID:
        return source_id
    return hashed_id(LEGACY_ID_PREFIX, source_id)


def kept_job_id(job_id: str | None, document: Document) -> str:
    """A source run's `job_id` as it is when natscron can use it, else `derived_id`."""
    if job_id is not None and _TOKEN.match(job_id) and len(job_id) <= MAX_JOB_ID:
        return job_id
    return derived_id(document)


def moment(document: Document, field: str, naive_zone: tzinfo = UTC) -> datetime | None:
    """A date field: a date, naive ones in `naive_zone` (BSON dates are UTC), or an ISO 8601
    string; in UTC, None if absent."""
    value = document.get(field)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise LegacyValueError(f"{field} {value!r} is not an ISO 8601 date") from None
    if not isinstance(value, datetime):
        raise LegacyValueError(f"{field} {value!r} is not a date")
    aware = value.replace(tzinfo=naive_zone) if value.tzinfo is None else value
    return aware.astimezone(UTC)


def count(document: Document, field: str) -> int | None:
    """A non-negative whole number (a float like 12.0 is accepted), or None if absent."""
    value = document.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise LegacyValueError(f"{field} {value!r} is not a whole number")
    if value < 0:
        raise LegacyValueError(f"{field} {value!r} is negative")
    return int(value)


def text(document: Document, field: str) -> str | None:
    value = document.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise LegacyValueError(f"{field} {value!r} is not a string")
    return value


def choice(document: Document, field: str, allowed: tuple[str, ...]) -> str | None:
    """A string out of `allowed`, compared case-insensitively (`FOR_SALE` is `for_sale`)."""
    value = text(document, field)
    if value is None:
        return None
    if value.lower() not in allowed:
        raise LegacyValueError(
            f"{field} {value!r} is not one of {', '.join(allowed)}; natscron cannot map it"
        )
    return value.lower()


def json_object(document: Document, field: str) -> dict[str, Any] | None:
    """A JSON column as an object: an object as it is, any other JSON value as
    `{"value": ...}`, so nothing the source kept is lost; None if absent."""
    value = document.get(field)
    if value is None or isinstance(value, dict):
        return value
    return {"value": value}
