"""Runner pools: which runners a run request goes to.

A runner belongs to one pool (`NATSCRON_RUNNER_POOL`, `default` unless set) and takes run
requests only from its pool's two lanes (`jobs.run.<pool>.<lane>`). It advertises its pool
with its scrapers in the catalogue; a scheduled job names its pool (`pool:`) or gets, when
it is applied, the pool its scraper is offered in (`catalogue.Catalogue.pool_for`). The
ticker reads the pool from the spec: choosing the subject of a fire costs nothing more.
"""

from collections.abc import Iterable
from typing import Annotated, Final

from pydantic import Field

DEFAULT_POOL: Final = "default"
POOL_PATTERN: Final = r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$"
"""A subject token, a consumer name's part and a Kubernetes name's suffix: lowercase
letters, digits and inner hyphens, at most 32 characters."""

PoolName = Annotated[str, Field(pattern=POOL_PATTERN)]


def with_default(pools: Iterable[str]) -> tuple[str, ...]:
    """`pools` without repeats, the default pool first (always among them)."""
    return tuple(dict.fromkeys((DEFAULT_POOL, *pools)))
