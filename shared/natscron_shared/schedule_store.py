"""Writing scheduled-job specs to KV `scheduled_jobs`, the source of truth the ticker watches."""

from nats.js import JetStreamContext

from natscron_shared import names
from natscron_shared.models import ScheduledJob
from natscron_shared.nats_conn import to_json


async def put_schedules(js: JetStreamContext, specs: list[ScheduledJob]) -> None:
    bucket = await js.key_value(names.KV_SCHEDULED_JOBS)
    for spec in specs:
        await bucket.put(spec.scheduled_job_id, to_json(spec))
