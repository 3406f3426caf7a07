"""Where a service finds NATS and MongoDB."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Endpoints:
    nats_url: str
    """One server or comma-separated seed servers, as `NATSCRON_NATS_URL` takes them."""
    mongo_url: str
