"""`natscron apply -f schedules.yaml`: validate all, then write all to KV."""

from pathlib import Path

from natscron.cli.connect import nats_client
from natscron.schedule_file import load_schedules
from natscron.stack import resolve_endpoints
from natscron_shared.schedule_store import put_schedules
from natscron_shared.settings import Settings


async def apply_file(path: Path, settings: Settings) -> str:
    specs = load_schedules(path)
    endpoints = resolve_endpoints(settings)
    async with nats_client(endpoints.nats_url, settings) as client:
        await put_schedules(client.jetstream(), specs)
    listed = ", ".join(spec.scheduled_job_id for spec in specs)
    return f"applied {len(specs)} scheduled job(s): {listed}"
