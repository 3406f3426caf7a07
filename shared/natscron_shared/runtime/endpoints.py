"""Where a service finds NATS and MongoDB."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Endpoints:
    nats_url: str
    mongo_url: str
