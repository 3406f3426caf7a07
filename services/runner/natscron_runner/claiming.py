"""Claims in KV `running`: which runner executes a job, and the one run of a schedule.

While a job executes, its runner holds `job.<job_id>` (a `JobClaim`: where it runs, for
`jobs.cancel`), and for a schedule whose overlap policy is `forbid` or `replace` also
`schedule.<scheduled_job_id>` (a `ScheduleClaim`), taken with `create`, which JetStream
grants to one writer only: that is what keeps two runs of such a schedule from executing
at once, whichever runners take them. A heartbeat renews the claims every third of the
bucket's TTL; the TTL expires the claims of a runner that died, so its schedule runs
again within the TTL. A job that ends deletes its claims by revision (never someone
else's), so the next run can start at once.

Overlap policy, when the schedule claim is held by another job:

- `forbid`: the new job ends `skipped`, saying which job on which runner it overlaps;
- `replace`: the new job cancels the holder (a `CancelMarker` by "overlap policy replace",
  which its runner acts on within a second), waits until the claim is released or lapses
  (bounded by the TTL and a margin: a live holder releases at once, a dead one's claim
  lapses within the TTL), then takes it and runs; if it waited in vain it ends `skipped`;
- the holder is this very job (its previous delivery, whose runner died or is handing it
  back): the message is handed back to be tried again later, without an event.

*Limit:* a runner stalled (or cut off from NATS) for longer than the TTL loses its
claims to the TTL while its job may still run; a `forbid` run started meanwhile overlaps
it until the stalled runner's next renewal finds the claim taken and stops its own run.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

import nats.errors
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue
from pydantic import ValidationError

from natscron_runner.metrics import RunnerMetrics
from natscron_shared.contract import names
from natscron_shared.contract.cancel import CancelMarker
from natscron_shared.contract.claims import JobClaim, ScheduleClaim
from natscron_shared.contract.enums import ConcurrencyPolicy
from natscron_shared.contract.messages import RunRequest
from natscron_shared.nats.connection import TRANSIENT_NATS_ERRORS, to_json
from natscron_shared.nats.kv_watch import bucket_ttl
from natscron_shared.runtime.clock import Clock

log = logging.getLogger(__name__)

RENEWALS_PER_TTL = 3
REPLACE_MARGIN_SECONDS = 2.0
"""JetStream expires an aged message on a timer; a lapsing claim may outlive its TTL a bit."""
RELEASE_POLL_SECONDS = 0.1
"""How often `replace` looks whether the claim is gone: an expiry by the bucket's TTL
reaches no watcher, so only a read can tell. Only while a replacement waits."""
NATS_ERROR_DELAY_SECONDS = 2.0
RELEASE_TIMEOUT_SECONDS = 5.0
REPLACE_BY = "overlap policy replace"
SKIP_OVERLAP = "overlap"
SKIP_REPLACE_TIMEOUT = "replace_timeout"
DEFER_CLAIMED = "claimed"
DEFER_NATS = "nats_error"
UNKNOWN = "(unknown)"


async def claim_ttl_of(bucket: KeyValue) -> float:
    """Claims last as long as the bucket keeps a value: its TTL, set by `provision`."""
    return await bucket_ttl(bucket, names.KV_RUNNING, "a dead runner's claims would never lapse")


@dataclass(frozen=True)
class Refusal:
    """Why a job does not run now: `skip` (a reason label) ends it `skipped`; otherwise
    its message is handed back, to be delivered again after `delay` seconds."""

    message: str
    skip: str | None = None
    defer: str = DEFER_CLAIMED
    delay: float = 0.0
    holder_job_id: str | None = None
    """The run holding the schedule claim, when that is why."""


class ClaimBook:
    """The claims of one runner, over KV `running` (and KV `cancels`, to replace a run)."""

    def __init__(
        self,
        running: KeyValue,
        cancels: KeyValue,
        ttl_seconds: float,
        runner_id: str,
        clock: Clock,
        metrics: RunnerMetrics,
    ) -> None:
        self.running = running
        self.cancels = cancels
        self.ttl_seconds = ttl_seconds
        self.runner_id = runner_id
        self.clock = clock
        self.metrics = metrics

    def for_job(self, request: RunRequest, on_lost: Callable[[str], None]) -> "JobClaims":
        """The claims `request` needs; `on_lost(reason)` stops the job if a renewal finds
        its schedule claim in another run's hands."""
        return JobClaims(self, request, on_lost)


class JobClaims:
    """The claims of one job: `acquire` before it runs, `release` once it ended."""

    def __init__(
        self, book: ClaimBook, request: RunRequest, on_lost: Callable[[str], None]
    ) -> None:
        self._book = book
        self._request = request
        self._on_lost = on_lost
        self._job_key = names.running_job_key(request.job_id)
        self._job_value = b""
        self._job_revision: int | None = None
        self._schedule_key: str | None = None
        self._schedule_revision: int | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        sid = request.scheduled_job_id
        if sid is not None and request.concurrency_policy is not ConcurrencyPolicy.ALLOW:
            self._schedule_key = names.schedule_claim_key(sid)

    async def acquire(self) -> Refusal | None:
        """Take the claims and start renewing them; or say why the job cannot run now."""
        try:
            if self._schedule_key is not None:
                refusal = await self._take_schedule(self._schedule_key)
                if refusal is not None:
                    return refusal
            claim = JobClaim(
                job_id=self._request.job_id,
                scheduled_job_id=self._request.scheduled_job_id,
                runner_id=self._book.runner_id,
                attempt=self._request.attempt,
                started_at=self._book.clock.now(),
            )
            self._job_value = to_json(claim)
            self._job_revision = await self._book.running.put(self._job_key, self._job_value)
            self._book.metrics.claims.labels("job", "taken").inc()
        except TRANSIENT_NATS_ERRORS as exc:
            self._book.metrics.nats_errors.labels("claim").inc()
            await self.release()
            return Refusal(
                f"KV {names.KV_RUNNING} unavailable: {type(exc).__name__}",
                defer=DEFER_NATS,
                delay=NATS_ERROR_DELAY_SECONDS,
            )
        self._heartbeat = asyncio.create_task(self._beat(), name="runner-claim-heartbeat")
        return None

    async def release(self) -> None:
        """Stop renewing and delete the claims, by revision: a claim that lapsed and was
        taken by another run stays its. Idempotent; a failure leaves the claim to the TTL."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None
        for kind, key, revision in (
            ("schedule", self._schedule_key, self._schedule_revision),
            ("job", self._job_key, self._job_revision),
        ):
            if key is None or revision is None:
                continue
            if kind == "schedule":
                self._schedule_revision = None
            else:
                self._job_revision = None
            try:
                async with asyncio.timeout(RELEASE_TIMEOUT_SECONDS):
                    await self._book.running.delete(key, last=revision)
            except (nats.errors.Error, TimeoutError) as exc:
                log.warning("could not release claim %s (%s); it lapses with the TTL", key, exc)
            else:
                self._book.metrics.claims.labels(kind, "released").inc()

    # -- the schedule claim -------------------------------------------------------------

    def _schedule_value(self) -> bytes:
        assert self._request.scheduled_job_id is not None
        return to_json(
            ScheduleClaim(
                scheduled_job_id=self._request.scheduled_job_id,
                job_id=self._request.job_id,
                runner_id=self._book.runner_id,
                since=self._book.clock.now(),
            )
        )

    async def _take_schedule(self, key: str) -> Refusal | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._book.ttl_seconds + REPLACE_MARGIN_SECONDS
        asked: set[str] = set()
        while True:
            try:
                self._schedule_revision = await self._book.running.create(
                    key, self._schedule_value()
                )
            except KeyWrongLastSequenceError:
                pass
            else:
                self._book.metrics.claims.labels("schedule", "taken").inc()
                return None
            holder = await self._holder(key)
            if holder is None:
                if loop.time() > deadline:
                    return Refusal(f"could not take claim {key}", delay=NATS_ERROR_DELAY_SECONDS)
                await asyncio.sleep(RELEASE_POLL_SECONDS)
                continue  # released in between: try again
            refusal = await self._overlap(key, holder, asked, deadline)
            if refusal is not None:
                return refusal

    async def _overlap(
        self, key: str, holder: ScheduleClaim, asked: set[str], deadline: float
    ) -> Refusal | None:
        """What the policy says about `holder`; None once it let go (try again)."""
        request = self._request
        if holder.job_id == request.job_id:
            return Refusal(
                f"its previous delivery (runner {holder.runner_id}) still holds {key}",
                delay=self._book.ttl_seconds / RENEWALS_PER_TTL,
            )
        if request.concurrency_policy is ConcurrencyPolicy.FORBID:
            return Refusal(
                f"overlaps job {holder.job_id} still running on runner {holder.runner_id}",
                skip=SKIP_OVERLAP,
                holder_job_id=holder.job_id,
            )
        if holder.job_id not in asked and holder.job_id != UNKNOWN:
            asked.add(holder.job_id)
            marker = CancelMarker(
                job_id=holder.job_id,
                reason=f"replaced by job {request.job_id}",
                by=REPLACE_BY,
                at=self._book.clock.now(),
            )
            await self._book.cancels.put(holder.job_id, to_json(marker))
            log.info(
                "job %s replaces job %s (runner %s)",
                request.job_id,
                holder.job_id,
                holder.runner_id,
            )
        how = await self._let_go(key, holder.job_id, deadline)
        self._book.metrics.replacements.labels(how or "timeout").inc()
        if how is None:
            waited = self._book.ttl_seconds + REPLACE_MARGIN_SECONDS
            return Refusal(
                f"job {holder.job_id} on runner {holder.runner_id} was asked to stop for it"
                f" but still ran after {waited:g}s",
                skip=SKIP_REPLACE_TIMEOUT,
                holder_job_id=holder.job_id,
            )
        return None

    async def _let_go(self, key: str, job_id: str, deadline: float) -> str | None:
        """Wait until `job_id` no longer holds `key`: "released" (deleted, or another job
        holds it now), "lapsed" (expired by the TTL: its runner died), or None by the
        deadline. An unreadable claim is held by `UNKNOWN`, as `_holder` says."""
        loop = asyncio.get_running_loop()
        while loop.time() < deadline:
            try:
                entry = await self._book.running.get(key)
            except KeyNotFoundError as gone:
                # nats-py keeps the tombstone of a delete as `entry`; an expiry leaves none.
                return "released" if gone.entry is not None else "lapsed"
            holder = _parse(entry.value)
            if (UNKNOWN if holder is None else holder.job_id) != job_id:
                return "released"
            await asyncio.sleep(RELEASE_POLL_SECONDS)
        return None

    async def _holder(self, key: str) -> ScheduleClaim | None:
        try:
            entry = await self._book.running.get(key)
        except KeyNotFoundError:
            return None
        holder = _parse(entry.value)
        if holder is None:
            log.warning("unreadable claim %s; treating it as held by an unknown job", key)
            return ScheduleClaim(
                scheduled_job_id=self._request.scheduled_job_id or "",
                job_id=UNKNOWN,
                runner_id=UNKNOWN,
                since=self._book.clock.now(),
            )
        return holder

    # -- the heartbeat --------------------------------------------------------------------

    async def _beat(self) -> None:
        interval = self._book.ttl_seconds / RENEWALS_PER_TTL
        while True:
            await asyncio.sleep(interval)
            try:
                await self._renew()
            except TRANSIENT_NATS_ERRORS:
                # The next beat comes well before the TTL runs out: two can be missed.
                self._book.metrics.nats_errors.labels("claim").inc()
                log.warning("renewing the claims of job %s failed", self._request.job_id)

    async def _renew(self) -> None:
        if self._job_revision is not None:
            self._job_revision = await self._book.running.put(self._job_key, self._job_value)
        if self._schedule_key is None or self._schedule_revision is None:
            return
        try:
            self._schedule_revision = await self._book.running.update(
                self._schedule_key, self._schedule_value(), last=self._schedule_revision
            )
        except KeyWrongLastSequenceError:
            await self._reclaim(self._schedule_key)

    async def _reclaim(self, key: str) -> None:
        """The renewal found the claim changed: it lapsed (take it again), our own late
        write landed (adopt its revision), or another run holds it (stop this one)."""
        try:
            entry = await self._book.running.get(key)
        except KeyNotFoundError:
            try:
                self._schedule_revision = await self._book.running.create(
                    key, self._schedule_value()
                )
            except KeyWrongLastSequenceError:
                holder = await self._holder(key)
            else:
                self._book.metrics.claims.labels("schedule", "lapsed").inc()
                log.warning("claim %s had lapsed (renewals late); taken again", key)
                return
        else:
            holder = _parse(entry.value)
            if (
                holder is not None
                and holder.job_id == self._request.job_id
                and holder.runner_id == self._book.runner_id
            ):
                self._schedule_revision = entry.revision
                return
        self._schedule_revision = None
        self._book.metrics.claims.labels("schedule", "lost").inc()
        other = "another run" if holder is None else f"job {holder.job_id}"
        where = "" if holder is None else f" on runner {holder.runner_id}"
        reason = (
            f"its claim {key} lapsed (renewals late by over {self._book.ttl_seconds:g}s)"
            f" and {other}{where} took it"
        )
        log.warning("job %s: %s; stopping it", self._request.job_id, reason)
        self._on_lost(reason)


def _parse(value: bytes | None) -> ScheduleClaim | None:
    try:
        return ScheduleClaim.model_validate_json(value or b"")
    except ValidationError:
        return None
