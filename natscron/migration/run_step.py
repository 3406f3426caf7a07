"""One legacy run: written to natscron's `jobs` under its schedule (an upsert that never
changes a stored document), then marked as migrated in the legacy collection."""

from dataclasses import dataclass
from datetime import datetime

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from natscron.migration.definitions import MARKER
from natscron.migration.legacy_values import LegacyValueError, legacy_id
from natscron.migration.report import RunOutcome, RunResult
from natscron.migration.runs import job_document
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.contract.storage import Document, JobDocument


@dataclass(frozen=True)
class RunStep:
    legacy: AsyncCollection[Document]
    jobs: AsyncCollection[JobDocument]
    dry_run: bool
    now: datetime

    async def migrate(self, document: Document, spec: ScheduledJob) -> RunResult:
        marker = document.get(MARKER)
        if isinstance(marker, dict):
            return self._result(
                document, marker.get("job_id"), spec, RunOutcome.ALREADY_MIGRATED, "migrated before"
            )
        try:
            job = job_document(document, spec, self.now)
        except LegacyValueError as exc:
            return self._result(document, None, spec, RunOutcome.SKIPPED, str(exc))
        job_id = job["job_id"]
        if self.dry_run:
            exists = await self.jobs.find_one({"job_id": job_id}, {"_id": 1}) is not None
            outcome = RunOutcome.UNCHANGED if exists else RunOutcome.LINKED
            message = "natscron already has it" if exists else "would be linked"
            return self._result(document, job_id, spec, outcome, message)
        inserted = await self._insert(job)
        await self.legacy.update_one(
            {"_id": document["_id"]},
            {
                "$set": {
                    MARKER: {
                        "at": self.now,
                        "job_id": job_id,
                        "scheduled_job_id": spec.scheduled_job_id,
                    }
                }
            },
        )
        if inserted:
            return self._result(document, job_id, spec, RunOutcome.LINKED, "linked")
        return self._result(document, job_id, spec, RunOutcome.UNCHANGED, "natscron already has it")

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
    def skipped(document: Document, spec: ScheduledJob | None, reason: str) -> RunResult:
        return RunStep._result(document, None, spec, RunOutcome.SKIPPED, reason)

    @staticmethod
    def _result(
        document: Document,
        job_id: object,
        spec: ScheduledJob | None,
        outcome: RunOutcome,
        message: str,
    ) -> RunResult:
        legacy_job_id = document.get("job_id")
        return RunResult(
            legacy_id=legacy_id(document),
            legacy_job_id=legacy_job_id if isinstance(legacy_job_id, str) else None,
            job_id=job_id if isinstance(job_id, str) else None,
            scheduled_job_id=None if spec is None else spec.scheduled_job_id,
            outcome=outcome,
            message=message,
        )
