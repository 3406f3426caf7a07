"""Reading values out of legacy `jobs` documents, which were written by hand-rolled code
over the years: dates as BSON dates or ISO strings, ids as ObjectIds or strings.

Every reader raises `LegacyValueError` with a sentence naming the field; the migration
reports it and skips the document.
"""

import hashlib
import re
from datetime import UTC, datetime

from bson import ObjectId

from natscron_shared.contract.storage import Document

LEGACY_ID_PREFIX = "legacy_"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")
MAX_TOKEN_TAIL = 90
"""Leaves room for the prefix in a 100-character scheduled job id."""


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
    value = document.get("_id")
    text = str(value) if isinstance(value, ObjectId | str) else repr(value)
    if not (_TOKEN.match(text) and len(text) <= MAX_TOKEN_TAIL):
        text = hashlib.sha256(text.encode()).hexdigest()[:24]
    return LEGACY_ID_PREFIX + text


def moment(document: Document, field: str) -> datetime | None:
    """A date field: a BSON date (naive ones are UTC) or an ISO 8601 string; None if absent."""
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
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


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
