"""`natscron apply -f schedules.yaml`: validate all, then write all to KV."""

from pathlib import Path

from natscron.cli.connect import nats_client
from natscron.schedule_file import load_schedules
from natscron.stack import resolve_nats_url
from natscron_shared import names
from natscron_shared.jetstream_check import Needs, require_provisioned
from natscron_shared.schedule_store import put_schedules
from natscron_shared.settings import Settings

NEEDS = Needs(buckets=(names.KV_SCHEDULED_JOBS,))


async def apply_file(path: Path, settings: Settings) -> str:
    specs = load_schedules(path)
    async with nats_client(resolve_nats_url(settings)) as client:
        await require_provisioned(client.jetstream(), NEEDS, "apply command")
        await put_schedules(client.jetstream(), specs)
    listed = ", ".join(spec.scheduled_job_id for spec in specs)
    return f"applied {len(specs)} scheduled job(s): {listed}"
