"""One legacy definition: converted, compared with KV `scheduled_jobs`, written if new,
and marked as migrated in the legacy collection."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue
from pydantic import ValidationError
from pymongo.asynchronous.collection import AsyncCollection

from natscron.migration.definitions import MARKER, convert
from natscron.migration.legacy_values import LegacyValueError, legacy_id
from natscron.migration.options import MigrationOptions
from natscron.migration.report import DefinitionOutcome, DefinitionResult
from natscron_shared.contract.catalogue import Catalogue, JobRejectedError, check_job
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.contract.storage import Document
from natscron_shared.nats.connection import to_json

WRITTEN = (DefinitionOutcome.CREATED, DefinitionOutcome.UNCHANGED, DefinitionOutcome.UPDATED)
"""Outcomes after which KV holds exactly the converted spec: the definition is marked."""


@dataclass(frozen=True)
class Stored:
    value: dict[str, Any] | None
    """The stored spec as JSON fields; None if it is not a valid spec."""
    revision: int


@dataclass(frozen=True)
class DefinitionStep:
    legacy: AsyncCollection[Document]
    bucket: KeyValue
    options: MigrationOptions
    catalogue: Catalogue | None
    now: datetime

    async def migrate(self, document: Document) -> tuple[DefinitionResult, ScheduledJob | None]:
        """The result, and the spec the definition's runs link to (None if skipped)."""
        try:
            converted = convert(document, self.options.scraper)
            if self.catalogue is not None:
                check_job(self.catalogue, converted.spec.scraper, converted.spec.params)
        except LegacyValueError as exc:
            return self._result(document, None, DefinitionOutcome.SKIPPED, str(exc)), None
        except JobRejectedError as exc:
            reason = "runners refuse it: " + "; ".join(map(str, exc.problems))
            return self._result(document, None, DefinitionOutcome.SKIPPED, reason), None
        spec = converted.spec
        outcome, message = await self._write(document, spec)
        if outcome in WRITTEN and not self.options.dry_run:
            await self._mark(document, spec.scheduled_job_id)
        return self._result(document, spec, outcome, message, converted.notes), spec

    async def _write(self, document: Document, spec: ScheduledJob) -> tuple[DefinitionOutcome, str]:
        key = spec.scheduled_job_id
        wanted = spec.model_dump(mode="json")
        stored = await self._stored(key)
        dry = self.options.dry_run
        if stored is None:
            marker = document.get(MARKER)
            if marker is not None and not self.options.force:
                return DefinitionOutcome.GONE, (
                    f"migrated at {_marked_at(marker)} but no longer in KV scheduled_jobs"
                    " (deleted in natscron?); not recreated without force"
                )
            if not dry:
                try:
                    await self.bucket.create(key, to_json(spec))
                except KeyWrongLastSequenceError:
                    return DefinitionOutcome.CONFLICT, "created in KV by someone else meanwhile"
            return DefinitionOutcome.CREATED, "would be created" if dry else "created"
        if stored.value == wanted:
            return DefinitionOutcome.UNCHANGED, "KV already holds this spec"
        differing = _differing(stored.value, wanted)
        if not self.options.force:
            return DefinitionOutcome.CONFLICT, (
                f"KV scheduled_jobs holds a different spec ({differing}); left as it is"
                " (force replaces it)"
            )
        if not dry:
            try:
                await self.bucket.update(key, to_json(spec), last=stored.revision)
            except KeyWrongLastSequenceError:
                return DefinitionOutcome.CONFLICT, "changed in KV by someone else meanwhile"
        verb = "would be replaced" if dry else "replaced"
        return DefinitionOutcome.UPDATED, f"{verb} ({differing})"

    async def _stored(self, key: str) -> Stored | None:
        try:
            entry = await self.bucket.get(key)
        except KeyNotFoundError:
            return None
        if entry.operation in (KV_DEL, KV_PURGE) or entry.revision is None:
            return None
        try:
            value = ScheduledJob.model_validate_json(entry.value or b"").model_dump(mode="json")
        except ValidationError:
            value = None
        return Stored(value, entry.revision)

    async def _mark(self, document: Document, scheduled_job_id: str) -> None:
        marker = document.get(MARKER)
        if isinstance(marker, dict) and marker.get("scheduled_job_id") == scheduled_job_id:
            return
        await self.legacy.update_one(
            {"_id": document["_id"]},
            {"$set": {MARKER: {"at": self.now, "scheduled_job_id": scheduled_job_id}}},
        )

    @staticmethod
    def _result(
        document: Document,
        spec: ScheduledJob | None,
        outcome: DefinitionOutcome,
        message: str,
        notes: list[str] | None = None,
    ) -> DefinitionResult:
        legacy_job_id = document.get("job_id")
        return DefinitionResult(
            legacy_id=legacy_id(document),
            legacy_job_id=legacy_job_id if isinstance(legacy_job_id, str) else None,
            scheduled_job_id=None if spec is None else spec.scheduled_job_id,
            outcome=outcome,
            message=message,
            notes=notes or [],
        )


def _marked_at(marker: object) -> str:
    at = marker.get("at") if isinstance(marker, dict) else None
    return at.isoformat() if isinstance(at, datetime) else "an unknown time"


def _differing(stored: dict[str, Any] | None, wanted: dict[str, Any]) -> str:
    if stored is None:
        return "the stored value is not a valid spec"
    names = sorted(name for name in wanted if stored.get(name) != wanted[name])
    return "fields differ: " + ", ".join(names)
