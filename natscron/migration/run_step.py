"""One source run of a migrated schedule: written to natscron's `jobs` (an upsert that
never changes a stored document), then marked as migrated in the source where the source
keeps marks. A run natscron has counted before (`migrated_runs`) is not written again, so
one that retention deleted since never comes back."""

from dataclasses import dataclass
from datetime import datetime

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from natscron.migration.plan import run_scrape
from natscron.migration.records import Run
from natscron.migration.report import RunOutcome, RunResult
from natscron.migration.scraper_map import ScraperMap
from natscron.migration.source import Source
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.contract.storage import JobDocument, MigratedRunDocument


@dataclass(frozen=True)
class RunStep:
    source: Source
    jobs: AsyncCollection[JobDocument]
    counted: AsyncCollection[MigratedRunDocument]
    scrapers: ScraperMap
    dry_run: bool
    now: datetime

    async def migrate(self, run: Run, spec: ScheduledJob) -> RunResult:
        if isinstance(run.marker, dict):
            job_id = run.marker.get("job_id")
            return self._result(run, job_id, spec, RunOutcome.ALREADY_MIGRATED, "migrated before")
        if run.document is None:
            return self.skipped(run, spec, run.problem or "cannot be converted")
        job = self.job_document(run, spec)
        job_id = job["job_id"]
        if await self.counted.find_one({"_id": job_id}, {"_id": 1}) is not None:
            if not self.dry_run:
                await self.source.mark_run(run, job_id, spec.scheduled_job_id, self.now)
            message = "migrated and counted before"
            return self._result(run, job_id, spec, RunOutcome.ALREADY_MIGRATED, message)
        if self.dry_run:
            exists = await self.jobs.find_one({"job_id": job_id}, {"_id": 1}) is not None
            outcome = RunOutcome.UNCHANGED if exists else RunOutcome.LINKED
            message = "natscron already has it" if exists else "would be linked"
            return self._result(run, job_id, spec, outcome, message)
        inserted = await self._insert(job)
        await self.source.mark_run(run, job_id, spec.scheduled_job_id, self.now)
        if inserted:
            return self._result(run, job_id, spec, RunOutcome.LINKED, "linked")
        return self._result(run, job_id, spec, RunOutcome.UNCHANGED, "natscron already has it")

    def job_document(self, run: Run, spec: ScheduledJob) -> JobDocument:
        assert run.document is not None
        scraper, params = run_scrape(self.scrapers, run.scrape, spec)
        job: JobDocument = {
            **run.document,
            "scheduled_job_id": spec.scheduled_job_id,
            "scraper": scraper,
            "params": params,
            "updated_at": self.now,
            "migrated_from": run.origin.migrated_from(),
        }
        job.setdefault("priority", spec.priority.value)
        return job

    async def _insert(self, job: JobDocument) -> bool:
        """True if inserted; a stored document (the recorder's, or an earlier run's) wins."""
        try:
            result = await self.jobs.update_one(
                {"job_id": job["job_id"]}, {"$setOnInsert": job}, upsert=True
            )
        except DuplicateKeyError:
            return False
        return result.upserted_id is not None

    @staticmethod
    def skipped(run: Run, spec: ScheduledJob | None, reason: str) -> RunResult:
        return RunStep._result(run, None, spec, RunOutcome.SKIPPED, reason)

    @staticmethod
    def _result(
        run: Run,
        job_id: object,
        spec: ScheduledJob | None,
        outcome: RunOutcome,
        message: str,
    ) -> RunResult:
        return RunResult(
            source=run.origin.source,
            legacy_id=run.origin.legacy_id,
            legacy_job_id=run.origin.legacy_job_id,
            job_id=job_id if isinstance(job_id, str) else None,
            scheduled_job_id=None if spec is None else spec.scheduled_job_id,
            outcome=outcome,
            message=message,
        )
