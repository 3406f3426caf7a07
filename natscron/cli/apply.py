"""`natscron apply -f schedules.yaml`: validate all, check all against the scraper
catalogue, then write all to KV. Nothing is written unless every spec passes."""

from pathlib import Path

from natscron.cli.connect import nats_client
from natscron.schedule_file import check_schedules, load_schedules
from natscron.stack import resolve_nats_url
from natscron_shared import names
from natscron_shared.catalogue import load_catalogue
from natscron_shared.jetstream_check import Needs, require_provisioned
from natscron_shared.schedule_store import put_schedules
from natscron_shared.settings import Settings

NEEDS = Needs(buckets=(names.KV_SCHEDULED_JOBS, names.KV_SCRAPERS))
UNCHECKED_NEEDS = Needs(buckets=(names.KV_SCHEDULED_JOBS,))


async def apply_file(path: Path, settings: Settings, unchecked: bool = False) -> str:
    """`unchecked` skips the catalogue: for when no runner is up, or not yet one with
    the scrapers the file names."""
    specs = load_schedules(path)
    async with nats_client(resolve_nats_url(settings)) as client:
        js = client.jetstream()
        await require_provisioned(js, UNCHECKED_NEEDS if unchecked else NEEDS, "apply command")
        if not unchecked:
            check_schedules(path, specs, await load_catalogue(js))
        await put_schedules(js, specs)
    listed = ", ".join(spec.scheduled_job_id for spec in specs)
    return f"applied {len(specs)} scheduled job(s): {listed}"
