"""`natscron jobs`: the most recent runs, from MongoDB."""

from datetime import datetime

from natscron.stack import resolve_endpoints
from natscron_recorder.mongo import JOBS, Document, database_of, new_client
from natscron_shared.settings import Settings


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def format_job(job: Document) -> str:
    parts = [
        _when(job.get("created_at")),
        f"{job.get('status', '?'):<9}",
        f"{job['job_id']:<56}",
        f"scraped={job.get('properties_scraped') or 0:<5}",
        f"saved={job.get('properties_saved') or 0:<5}",
    ]
    if job.get("duration_ms") is not None:
        parts.append(f"{job['duration_ms']} ms")
    if job.get("error_type"):
        parts.append(f"{job['error_type']}: {job.get('error_message')}")
    return "  ".join(parts)


async def recent_jobs(settings: Settings, scheduled_job_id: str | None, limit: int) -> list[str]:
    endpoints = resolve_endpoints(settings)
    client = new_client(endpoints.mongo_url)
    try:
        query = {} if scheduled_job_id is None else {"scheduled_job_id": scheduled_job_id}
        cursor = database_of(client)[JOBS].find(query).sort("created_at", -1).limit(limit)
        return [format_job(job) async for job in cursor]
    finally:
        await client.close()
