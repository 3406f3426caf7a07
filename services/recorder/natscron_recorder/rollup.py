"""What one recorder flush adds to the schedules and the statistics, gathered in memory.

Jobs are written as their events come; the runs that became final in a flush, and the
newest next run of each schedule, are added up here and written once per flush: one
update per schedule (`rollup_writer.py`), one per statistics document. A job counts in
the flush named by its `count_flush`, so the same sum can be rebuilt from the stored jobs
after a crash (`from_jobs`).
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from natscron_recorder.stats import StatsBatch
from natscron_shared.contract.enums import JobStatus
from natscron_shared.contract.messages import ScheduleEvent
from natscron_shared.contract.run_history import FinishedRun
from natscron_shared.contract.storage import Document


@dataclass(frozen=True)
class FinalJob:
    """What a job that just became final adds."""

    job_id: str
    scheduled_job_id: str | None
    status: JobStatus
    finished_at: datetime
    duration_ms: int | None
    properties_scraped: int | None

    @classmethod
    def of(cls, doc: Document) -> "FinalJob":
        """From a stored final job."""
        return cls(
            job_id=doc["job_id"],
            scheduled_job_id=doc.get("scheduled_job_id"),
            status=JobStatus(doc["status"]),
            finished_at=doc["finished_at"],
            duration_ms=doc.get("duration_ms"),
            properties_scraped=doc.get("properties_scraped"),
        )


@dataclass
class Rollup:
    flush_id: str
    runs: dict[str, list[FinishedRun]] = field(default_factory=lambda: defaultdict(list))
    stats: StatsBatch = field(default_factory=StatsBatch)
    next_runs: dict[str, ScheduleEvent] = field(default_factory=dict)
    finals: int = 0

    def add_final(self, job: FinalJob) -> None:
        self.finals += 1
        self.stats.add_final(
            job.scheduled_job_id,
            job.status,
            job.finished_at,
            job.duration_ms,
            job.properties_scraped,
        )
        if job.scheduled_job_id is not None and job.status.is_finished_run:
            self.runs[job.scheduled_job_id].append(
                FinishedRun(job.job_id, job.status, job.finished_at, job.duration_ms)
            )

    @property
    def runs_finished(self) -> int:
        return sum(len(runs) for runs in self.runs.values())

    @property
    def empty(self) -> bool:
        return not self.finals and not self.next_runs

    @classmethod
    def from_jobs(cls, flush_id: str, docs: list[Document]) -> "Rollup":
        rollup = cls(flush_id)
        for doc in docs:
            rollup.add_final(FinalJob.of(doc))
        return rollup
