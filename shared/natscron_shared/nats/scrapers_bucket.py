"""Reading the scraper catalogue from KV `scrapers`, where the live runners advertise."""

import asyncio
import logging

from nats.js import JetStreamContext
from pydantic import ValidationError

from natscron_shared.contract import names
from natscron_shared.contract.catalogue import Catalogue, ScraperEntry
from natscron_shared.nats.kv_watch import current_values

log = logging.getLogger(__name__)

LOAD_TIMEOUT_SECONDS = 10.0


async def load_catalogue(js: JetStreamContext) -> Catalogue:
    """What the live runners advertise now: the current values of KV `scrapers` (expired
    ones are gone). An entry that does not parse, or whose key is not `<pool>.<scraper>`, is
    skipped (a runner from before pools put its entry under the scraper's name alone). Raises
    nats-py's errors (`BucketNotFoundError` if it is not provisioned)."""
    bucket = await js.key_value(names.KV_SCRAPERS)
    async with asyncio.timeout(LOAD_TIMEOUT_SECONDS):
        values = await current_values(bucket)
    parsed = (_parse(key, value) for key, value in values.items())
    return Catalogue([entry for entry in parsed if entry is not None])


def _parse(key: str, value: bytes) -> ScraperEntry | None:
    try:
        entry = ScraperEntry.model_validate_json(value)
    except ValidationError:
        log.warning("ignoring KV %s entry %r: not a scraper entry", names.KV_SCRAPERS, key)
        return None
    if names.scraper_key(entry.pool, entry.scraper) != key:
        log.warning(
            "ignoring KV %s entry %r: it names scraper %r of pool %r",
            names.KV_SCRAPERS,
            key,
            entry.scraper,
            entry.pool,
        )
        return None
    return entry
