"""Checkpoints of resumable scrapes in KV `checkpoints`, key: the job id.

A scraper that resumes (the crawl) saves its state between pages; the next delivery of
the same attempt (its runner died) or the next attempt (it failed) loads it. A saved
checkpoint also carries what the executor counted by then, so the run's totals cover
every delivery:

- `save` first flushes the attempt's item batcher and waits until JetStream stored every
  batch sent, then writes the state by revision (compare-and-set: a stalled delivery
  whose job another runner took over fails its next save instead of overwriting);
- `load` restores the batch and item counts and the skipped pages, and numbers the next
  batch after the last one ITEMS holds for the job: batches a crashed delivery sent after
  its last checkpoint are not overwritten, nor is a new batch dropped as their duplicate
  (`Nats-Msg-Id` `<job_id>:items:<n>`).

The runner deletes the checkpoint when the job ends (completed, failed, cancelled); the
bucket's TTL (a day, renewed by each save) removes one whose job never ends.
"""

import logging
from collections import Counter
from typing import Any

import nats.errors
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, NotFoundError
from nats.js.kv import KeyValue
from pydantic import AwareDatetime, BaseModel, Field, ValidationError

from natscron_runner.events import ItemBatcher
from natscron_runner.scrapers.errors import CheckpointTooLargeError, TransientScrapeError
from natscron_shared.contract import names
from natscron_shared.contract.messages import MAX_MESSAGE_BYTES, ItemBatch, RunRequest
from natscron_shared.runtime.clock import Clock

log = logging.getLogger(__name__)

MAX_CHECKPOINT_BYTES = MAX_MESSAGE_BYTES - 4096
NATS_ERRORS = (nats.errors.Error, TimeoutError)


class SavedCheckpoint(BaseModel):
    """A KV `checkpoints` value."""

    job_id: str
    attempt: int
    runner_id: str
    saved_at: AwareDatetime
    batches: int = Field(ge=0)
    items: int = Field(ge=0)
    skipped_pages: dict[str, int] = Field(default_factory=dict)
    state: dict[str, Any]


class CheckpointLostError(TransientScrapeError):
    """Another delivery of the job wrote its checkpoint since this one last did."""


class RunCheckpoint:
    """The checkpoint of one delivery of a job (`ScrapeContext.checkpoint`)."""

    def __init__(
        self,
        bucket: KeyValue,
        js: JetStreamContext,
        request: RunRequest,
        runner_id: str,
        clock: Clock,
        batcher: ItemBatcher,
        skipped_pages: Counter[str],
    ) -> None:
        self._bucket = bucket
        self._js = js
        self._request = request
        self._runner_id = runner_id
        self._clock = clock
        self._batcher = batcher
        self._skipped_pages = skipped_pages
        self._revision = 0
        self.used = False
        """Whether the scrape loaded or saved: only then is there anything to delete."""

    async def load(self) -> dict[str, Any] | None:
        self.used = True
        job_id = self._request.job_id
        try:
            entry = await self._bucket.get(job_id)
        except KeyNotFoundError as gone:
            self._revision = 0 if gone.entry is None else gone.entry.revision
            return None
        except NATS_ERRORS as exc:
            raise TransientScrapeError(f"could not read the checkpoint: {exc!r}") from exc
        self._revision = entry.revision or 0
        try:
            saved = SavedCheckpoint.model_validate_json(entry.value or b"")
        except ValidationError:
            log.warning("job %s: its checkpoint is unreadable; starting over", job_id)
            return None
        self._batcher.resume(
            batches=max(saved.batches, await self._after_last_batch()), items=saved.items
        )
        self._skipped_pages.update(saved.skipped_pages)
        log.info(
            "job %s resumes from the checkpoint runner %s saved at %s (attempt %d)",
            job_id,
            saved.runner_id,
            saved.saved_at.isoformat(),
            saved.attempt,
        )
        return saved.state

    async def save(self, state: dict[str, Any]) -> None:
        self.used = True
        await self._batcher.confirmed()
        value = (
            SavedCheckpoint(
                job_id=self._request.job_id,
                attempt=self._request.attempt,
                runner_id=self._runner_id,
                saved_at=self._clock.now(),
                batches=self._batcher.batches,
                items=self._batcher.items,
                skipped_pages=dict(self._skipped_pages),
                state=state,
            )
            .model_dump_json()
            .encode()
        )
        if len(value) > MAX_CHECKPOINT_BYTES:
            raise CheckpointTooLargeError(
                f"the scrape's state takes {len(value)} bytes, over {MAX_CHECKPOINT_BYTES}"
            )
        try:
            self._revision = await self._bucket.update(
                self._request.job_id, value, last=self._revision
            )
        except KeyWrongLastSequenceError as exc:
            raise CheckpointLostError(
                f"job {self._request.job_id}: another delivery of it saved its checkpoint"
                " meanwhile; leaving the scrape to it"
            ) from exc
        except NATS_ERRORS as exc:
            raise TransientScrapeError(f"could not save the checkpoint: {exc!r}") from exc

    async def discard(self) -> None:
        """The job ended: nothing will resume it. A failure leaves it to the TTL."""
        if not self.used:
            return
        try:
            await self._bucket.delete(self._request.job_id)
        except NATS_ERRORS as exc:
            log.warning("job %s: could not delete its checkpoint (%s)", self._request.job_id, exc)

    async def _after_last_batch(self) -> int:
        """One past the newest batch ITEMS holds for the job (0 if none)."""
        subject = names.items_subject(self._request.job_id)
        try:
            message = await self._js.get_last_msg(names.STREAM_ITEMS, subject)
        except NotFoundError:
            return 0
        except NATS_ERRORS as exc:
            raise TransientScrapeError(
                f"could not read the job's last item batch: {exc!r}"
            ) from exc
        try:
            return ItemBatch.model_validate_json(message.data or b"").batch + 1
        except ValidationError:
            return 0
