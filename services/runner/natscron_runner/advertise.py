"""Advertising this runner's scrapers in the scraper catalogue (KV `scrapers`).

One entry per scraper, key = `<pool>.<scraper>`, value = `ScraperEntry` (this runner's
pool, description, the JSON schema of its params model, this runner's id, when). Put once
before the runner counts as started, then every third of the bucket's TTL, so an entry
outlives a missed renewal or two and expires once no live runner renews it. A stopping
runner deletes nothing: another runner of its pool may advertise the same scrapers, and the
TTL takes care of the rest.
"""

import asyncio
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jsonschema.exceptions import SchemaError
from nats.js import JetStreamContext
from nats.js.kv import KeyValue
from prometheus_client import Counter
from pydantic import BaseModel

from natscron_runner.scrapers.base import Scraper
from natscron_runner.scrapers.errors import ScrapeError
from natscron_runner.scrapers.registry import ScraperRegistry
from natscron_shared.contract import names
from natscron_shared.contract.catalogue import OPEN_PARAMS_SCHEMA, ScraperEntry, schema_validator
from natscron_shared.nats.connection import TRANSIENT_NATS_ERRORS, to_json
from natscron_shared.nats.jetstream_check import Needs, require_provisioned
from natscron_shared.nats.kv_watch import bucket_ttl
from natscron_shared.runtime.clock import Clock

log = logging.getLogger(__name__)

RENEWALS_PER_TTL = 3
RETRY_SECONDS = 1.0
SCRAPER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
"""A scraper name is a KV key and a job field (`Identifier`); others cannot be advertised."""


@dataclass(frozen=True)
class Advertised:
    """What a scraper says about itself: the part of its entry that does not change."""

    description: str
    params_schema: dict[str, Any]


def params_schema(name: str, scraper: Scraper) -> dict[str, Any]:
    """The JSON schema of the scraper's `params_model`, or one accepting any object."""
    model = getattr(scraper, "params_model", None)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return dict(OPEN_PARAMS_SCHEMA)
    try:
        schema = model.model_json_schema()
        schema_validator(schema)
    except (SchemaError, ValueError, TypeError) as exc:
        log.warning("scraper %r: its params model has no usable JSON schema: %s", name, exc)
        return dict(OPEN_PARAMS_SCHEMA)
    return schema


def description_of(scraper: Scraper) -> str:
    doc = type(scraper).__doc__ or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def describe_scrapers(registry: ScraperRegistry) -> dict[str, Advertised]:
    """Every scraper the registry can run (plugins are loaded now); those that fail to load
    or whose name cannot be a key are left out, with a warning."""
    described: dict[str, Advertised] = {}
    for name in registry.names():
        if not SCRAPER_NAME.match(name):
            log.warning("not advertising scraper %r: the name is not an identifier", name)
            continue
        try:
            scraper = registry.get(name)
        except ScrapeError as exc:
            log.warning("not advertising scraper %r: %s", name, exc)
            continue
        described[name] = Advertised(description_of(scraper), params_schema(name, scraper))
    return described


class Advertiser:
    """Puts this runner's entries in KV `scrapers`, now (`advertise`) and on (`run`)."""

    def __init__(
        self,
        bucket: KeyValue,
        pool: str,
        scrapers: Mapping[str, Advertised],
        runner_id: str,
        clock: Clock,
        interval_seconds: float,
        nats_errors: Counter,
    ) -> None:
        self._bucket = bucket
        self._pool = pool
        self._scrapers = dict(scrapers)
        self._runner_id = runner_id
        self._clock = clock
        self.interval_seconds = interval_seconds
        self._nats_errors = nats_errors

    def scraper_names(self) -> list[str]:
        return sorted(self._scrapers)

    def entries(self) -> list[ScraperEntry]:
        now = self._clock.now()
        return [
            ScraperEntry(
                scraper=name,
                pool=self._pool,
                description=about.description,
                params_schema=about.params_schema,
                runner_id=self._runner_id,
                advertised_at=now,
            )
            for name, about in self._scrapers.items()
        ]

    async def advertise(self) -> None:
        for entry in self.entries():
            await self._bucket.put(names.scraper_key(entry.pool, entry.scraper), to_json(entry))

    async def run(self) -> None:
        """Renew every `interval_seconds`; a failed renewal is retried after a second."""
        pause = self.interval_seconds
        while True:
            await asyncio.sleep(pause)
            try:
                await self.advertise()
            except TRANSIENT_NATS_ERRORS:
                self._nats_errors.labels("advertise").inc()
                log.warning("renewing the scraper catalogue failed; retrying", exc_info=True)
                pause = RETRY_SECONDS
            else:
                pause = self.interval_seconds


async def start_advertising(
    js: JetStreamContext,
    pool: str,
    registry: ScraperRegistry,
    runner_id: str,
    clock: Clock,
    nats_errors: Counter,
) -> Advertiser:
    """Check the bucket, put the entries once, and return the advertiser to `run`."""
    await require_provisioned(js, Needs(buckets=(names.KV_SCRAPERS,)), "runner")
    bucket = await js.key_value(names.KV_SCRAPERS)
    ttl = await bucket_ttl(
        bucket, names.KV_SCRAPERS, "a stopped runner's scrapers would never expire"
    )
    advertiser = Advertiser(
        bucket,
        pool,
        describe_scrapers(registry),
        runner_id,
        clock,
        ttl / RENEWALS_PER_TTL,
        nats_errors,
    )
    await advertiser.advertise()
    log.info(
        "runner %s advertises scrapers %s in pool %s",
        runner_id,
        ", ".join(advertiser.scraper_names()),
        pool,
    )
    return advertiser
