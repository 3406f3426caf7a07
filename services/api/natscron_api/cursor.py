"""Opaque page cursors: URL-safe base64 of the last row's sort key, tagged with the listing
it belongs to, so a cursor of one listing is refused by another instead of paging wrongly."""

import base64
import binascii
import json
from datetime import datetime

from natscron_api.errors import ApiError


def encode_cursor(listing: str, key: list[str]) -> str:
    raw = json.dumps([listing, *key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(listing: str, cursor: str, parts: int) -> list[str]:
    """The sort key of `cursor`, which must come from `listing` and hold `parts` strings."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        decoded = json.loads(raw)
    except (binascii.Error, ValueError):
        decoded = None
    if (
        not isinstance(decoded, list)
        or len(decoded) != parts + 1
        or decoded[0] != listing
        or not all(isinstance(part, str) for part in decoded[1:])
    ):
        raise ApiError("invalid_cursor", "cursor is not one this listing handed out")
    return list(decoded[1:])


def cursor_moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ApiError("invalid_cursor", "cursor is not one this listing handed out")
    return moment
