"""What runners keep in KV `running`, renewed by a heartbeat and expired by the bucket's
TTL, so a dead runner's claims lapse within `CLAIM_TTL_SECONDS`.

- `job.<job_id>`: a `JobClaim` while a runner executes that job (answers "is it running,
  and where?" for `jobs.cancel`);
- `schedule.<scheduled_job_id>`: a `ScheduleClaim` while a run of a schedule with a
  `forbid` or `replace` overlap policy executes: the one run allowed at a time.
"""

from pydantic import AwareDatetime, BaseModel


class JobClaim(BaseModel):
    job_id: str
    scheduled_job_id: str | None = None
    runner_id: str
    attempt: int
    started_at: AwareDatetime


class ScheduleClaim(BaseModel):
    scheduled_job_id: str
    job_id: str
    runner_id: str
    since: AwareDatetime
