"""Ticker presence: each ticker answers on a subject of its own for as long as its NATS
connection lives.

A standby asks the lease holder's subject. NATS answers "no responders" at once when no
connection is subscribed, which it knows the moment a killed holder's socket closes, so a
standby need not wait for the lease's TTL to learn that its holder is gone.
"""

from hashlib import blake2b

from pydantic import BaseModel

from natscron_shared.contract.names import TICKER_PRESENCE_PREFIX


class PresenceProbe(BaseModel):
    """Empty: the question is the subject."""


class TickerPresence(BaseModel):
    ticker_id: str
    leading: bool


def instance_token(ticker_id: str) -> str:
    """A subject token (and queue group name) for any ticker id, whose host names have
    dots: a digest of it."""
    return blake2b(ticker_id.encode(), digest_size=8).hexdigest()


def presence_subject(ticker_id: str) -> str:
    return f"{TICKER_PRESENCE_PREFIX}.{instance_token(ticker_id)}"
