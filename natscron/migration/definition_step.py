"""One planned source schedule: compared with KV `scheduled_jobs`, written if new, then
remembered as migrated, in natscron (`migrated_from` on its `scheduled_jobs` document) and
in the source where the source keeps marks."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue
from pydantic import ValidationError
from pymongo.asynchronous.collection import AsyncCollection

from natscron.migration.options import MigrationOptions
from natscron.migration.plan import Planned
from natscron.migration.records import Definition
from natscron.migration.report import DefinitionOutcome, DefinitionResult
from natscron.migration.source import Source
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.contract.storage import MigratedSchedule, ScheduledJobDocument
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
    source: Source
    bucket: KeyValue
    schedules: AsyncCollection[ScheduledJobDocument]
    """natscron's MongoDB `scheduled_jobs`."""
    options: MigrationOptions
    now: datetime

    async def migrate(self, planned: Planned) -> tuple[DefinitionResult, ScheduledJob | None]:
        """The result, and the spec the definition's runs link to (None if there is none)."""
        definition = planned.definition
        if planned.successor is not None:
            successor = planned.successor.definition.origin
            message = (
                f"superseded by {successor.legacy_job_id or successor.legacy_id} of"
                f" {successor.source}, which is migrated instead"
            )
            return self._result(
                planned, planned.successor.spec, DefinitionOutcome.SUPERSEDED, message
            ), planned.successor.spec
        if planned.unmapped_kind is not None:
            message = f"no scraper is mapped for the kind {planned.unmapped_kind}"
            return self._result(planned, None, DefinitionOutcome.SKIPPED, message), None
        spec = planned.spec
        if spec is None:
            reason = planned.problem or "cannot be converted"
            return self._result(planned, None, DefinitionOutcome.SKIPPED, reason), None
        outcome, message = await self._write(definition, spec)
        if outcome in WRITTEN and not self.options.dry_run:
            await self._remember(definition, spec.scheduled_job_id)
            await self.source.mark_definition(definition, spec.scheduled_job_id, self.now)
        return self._result(planned, spec, outcome, message), spec

    async def _write(
        self, definition: Definition, spec: ScheduledJob
    ) -> tuple[DefinitionOutcome, str]:
        key = spec.scheduled_job_id
        wanted = spec.model_dump(mode="json")
        stored = await self._stored(key)
        dry = self.options.dry_run
        if stored is None:
            migrated_at = await self._migrated_at(definition, key)
            if migrated_at is not None and not self.options.force:
                return DefinitionOutcome.GONE, (
                    f"migrated at {migrated_at} but no longer in KV scheduled_jobs"
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

    async def _migrated_at(self, definition: Definition, key: str) -> str | None:
        """When an earlier migration wrote the schedule, as the source's mark or natscron's
        `migrated_from` say; None if none did."""
        marks: list[object] = [definition.marker]
        document = await self.schedules.find_one({"scheduled_job_id": key}, {"migrated_from": 1})
        if document is not None:
            marks.append(document.get("migrated_from"))
        for mark in marks:
            if isinstance(mark, dict):
                at = mark.get("at")
                return at.isoformat() if isinstance(at, datetime) else "an unknown time"
        return None

    async def _remember(self, definition: Definition, key: str) -> None:
        """Sets `migrated_from` on natscron's document (creating it if the recorder has not
        yet), unless a migration set it before."""
        migrated: MigratedSchedule = {**definition.origin.migrated_from(), "at": self.now}
        await self.schedules.update_one(
            {"scheduled_job_id": key}, {"$setOnInsert": {"migrated_from": migrated}}, upsert=True
        )
        await self.schedules.update_one(
            {"scheduled_job_id": key, "migrated_from": {"$exists": False}},
            {"$set": {"migrated_from": migrated}},
        )

    @staticmethod
    def _result(
        planned: Planned,
        spec: ScheduledJob | None,
        outcome: DefinitionOutcome,
        message: str,
    ) -> DefinitionResult:
        definition = planned.definition
        return DefinitionResult(
            source=definition.origin.source,
            legacy_id=definition.origin.legacy_id,
            legacy_job_id=definition.origin.legacy_job_id,
            kind=None if definition.scrape is None else definition.scrape.kind,
            scheduled_job_id=None if spec is None else spec.scheduled_job_id,
            outcome=outcome,
            message=message,
            notes=list(definition.notes),
        )


def _differing(stored: dict[str, Any] | None, wanted: dict[str, Any]) -> str:
    if stored is None:
        return "the stored value is not a valid spec"
    names = sorted(name for name in wanted if stored.get(name) != wanted[name])
    return "fields differ: " + ", ".join(names)
