"""Writing a batch's jobs: each a single-document write, no transaction.

A job not stored yet is inserted (on SecantusDB an insert costs about a quarter of an
update); a stored one is updated on the condition that its `revision` is still the one
read, so a concurrent writer (another recorder, the item batches creating the document)
never has its newer fields overwritten: a job whose insert or update lost such a race is
read again and written again. Only the fields of an event that moves the job forward are
written, and the attempts when they change, so a redelivered batch writes nothing.

The write that makes a job final carries the id of the flush that counts it
(`count_flush`): exactly one write can, so the job counts once.
"""

from dataclasses import dataclass, field
from datetime import datetime

from pymongo import InsertOne, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from natscron_recorder.attempts import fold, stored_moment
from natscron_recorder.guarded import DUPLICATE_KEY, WriteRaceError
from natscron_recorder.rollup import FinalJob
from natscron_shared.contract.job_fields import job_fields, progress
from natscron_shared.contract.messages import JobEvent
from natscron_shared.contract.storage import FINAL, JOBS, AttemptFields, Document

MAX_RACES = 20
STORED_FIELDS = {
    "_id": 0,
    "job_id": 1,
    "progress": 1,
    "attempts": 1,
    "revision": 1,
    "count_flush": 1,
    "scheduled_job_id": 1,
    "status": 1,
    "finished_at": 1,
    "duration_ms": 1,
    "properties_scraped": 1,
}


@dataclass
class JobsWritten:
    inserts: int = 0
    updates: int = 0
    finals: list[FinalJob] = field(default_factory=list)


def final_job(event: JobEvent) -> FinalJob:
    return FinalJob(
        job_id=event.job.job_id,
        scheduled_job_id=event.job.scheduled_job_id,
        status=event.status,
        finished_at=finished_at(event),
        duration_ms=event.duration_ms,
        properties_scraped=event.properties_scraped,
    )


def finished_at(event: JobEvent) -> datetime:
    return stored_moment(event.completed_at or event.at)


def _fields(
    event: JobEvent,
    stored: Document | None,
    attempts: list[AttemptFields],
    flush_id: str,
    now: datetime,
) -> Document:
    """What moves the job forward: the event's fields if it is more advanced than the
    stored job, the attempts if they change; empty when nothing does."""
    before = [] if stored is None else stored.get("attempts", [])
    after = fold(before, attempts, event.job.max_retries + 1)
    fields: Document = {}
    stored_progress = -1 if stored is None else int(stored.get("progress", -1))
    if stored_progress < progress(event):
        fields.update(job_fields(event, now))
        if progress(event) == FINAL:
            fields.update(count_flush=flush_id, finished_at=finished_at(event))
    if after != before:
        fields["attempts"] = after
    return fields


class JobWriter:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._db = db

    async def write(
        self,
        events: list[JobEvent],
        attempts: dict[str, list[AttemptFields]],
        flush_id: str,
        now: datetime,
    ) -> JobsWritten:
        """`events`: the most advanced event of each job. The jobs this call made final
        are in `finals`."""
        written = JobsWritten()
        pending = {event.job.job_id: event for event in events}
        stored = await self._stored(list(pending))
        counted_before = {j for j, doc in stored.items() if doc.get("count_flush") == flush_id}
        for _ in range(MAX_RACES):
            pending = await self._write_once(pending, stored, attempts, flush_id, now, written)
            if not pending:
                return written
            stored = await self._stored(list(pending))
            counted = counted_before | {final.job_id for final in written.finals}
            for job_id, doc in stored.items():
                # Made final by this call's write whose outcome was not told.
                if doc.get("count_flush") == flush_id and job_id not in counted:
                    written.finals.append(FinalJob.of(doc))
        raise WriteRaceError(f"{len(pending)} jobs kept changing under the recorder")

    async def _write_once(
        self,
        pending: dict[str, JobEvent],
        stored: dict[str, Document],
        attempts: dict[str, list[AttemptFields]],
        flush_id: str,
        now: datetime,
        written: JobsWritten,
    ) -> dict[str, JobEvent]:
        """Writes what moves each job forward; the jobs to read and write again."""
        inserts: list[tuple[JobEvent, Document]] = []
        updates: list[tuple[JobEvent, UpdateOne, bool]] = []
        for job_id, event in pending.items():
            doc = stored.get(job_id)
            fields = _fields(event, doc, attempts.get(job_id, []), flush_id, now)
            if not fields:
                continue
            if doc is None:
                # Item batches own these two ($inc/$push); the job's first write creates them.
                inserts.append(
                    (event, {**fields, "properties_saved": 0, "saved_batches": [], "revision": 1})
                )
            else:
                query = {"job_id": job_id, "revision": doc.get("revision")}
                update = UpdateOne(query, {"$set": fields, "$inc": {"revision": 1}})
                updates.append((event, update, "count_flush" in fields))
        again: dict[str, JobEvent] = {}
        if inserts:
            raced = await self._insert([doc for _, doc in inserts])
            for index, (event, doc) in enumerate(inserts):
                if index in raced:
                    again[event.job.job_id] = event
                else:
                    written.inserts += 1
                    if "count_flush" in doc:
                        written.finals.append(final_job(event))
        if updates:
            result = await self._db[JOBS].bulk_write([u for _, u, _ in updates], ordered=False)
            if result.matched_count == len(updates):
                written.updates += len(updates)
                written.finals += [final_job(event) for event, _, final in updates if final]
            else:
                # Which matched is not told: read them all again; what was written by
                # this call shows as done (and its finals by their `count_flush`).
                written.updates += result.modified_count
                again.update({event.job.job_id: event for event, _, _ in updates})
        return again

    async def _insert(self, docs: list[Document]) -> set[int]:
        """Inserts `docs`; the indexes of those another writer inserted first."""
        try:
            await self._db[JOBS].bulk_write([InsertOne(doc) for doc in docs], ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if exc.details.get("writeConcernErrors") or any(
                error["code"] != DUPLICATE_KEY for error in errors
            ):
                raise
            return {error["index"] for error in errors}
        return set()

    async def _stored(self, job_ids: list[str]) -> dict[str, Document]:
        return {
            doc["job_id"]: doc
            async for doc in self._db[JOBS].find({"job_id": {"$in": job_ids}}, STORED_FIELDS)
        }
