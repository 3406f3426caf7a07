"""The leader turns the ends of parents' runs into their children's runs
(`natscron_shared.contract.chains`).

It pulls stream CHAINS through the durable consumer `ticker-chains`, which hands out one
message at a time (`max_ack_pending` 1): a finish the last leader took and never acked
(it died) comes back to the next before any later one, so every child sees its parents'
runs in the order they were stored. Only the leader pulls, and only once its book is
loaded: a child not yet loaded would miss the finish.

For each child of the finishing parent, its `ChainState` in KV `chain_state` is read,
advanced (`chain_steps.advance`) and stored by compare-and-set; a chained run decided on
is stored in the state (`firing`) before it is published, and cleared once it is. A state
found `firing` is published first, whoever decided it. The message is acked once every
child is done, so a leader that dies anywhere in between leaves the finish to the next,
which finds what was done and does only the rest: the run's id is the same, and a finish
applied twice changes nothing but publishing its decision record again (`chain_decisions`),
which the recorder merges into the first. A NATS error hands the message back for a second.
"""

import asyncio
import contextlib
import logging

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import KeyDeletedError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue
from pydantic import ValidationError

from natscron_shared.contract import names
from natscron_shared.contract.chains import ChainState, ChildRun, ParentFinish
from natscron_shared.contract.enums import Trigger
from natscron_shared.contract.messages import bad_message_reason, run_request_for
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.nats.connection import settle_quietly
from natscron_shared.runtime.clock import Clock
from natscron_ticker.book import ScheduleBook
from natscron_ticker.chain_decisions import ChainDecisions
from natscron_ticker.chain_steps import advance
from natscron_ticker.metrics import TickerMetrics
from natscron_ticker.publishing import JobPublisher
from natscron_ticker.scheduler import Leadership

log = logging.getLogger(__name__)

FETCH_WAIT_SECONDS = 1.0
"""How long one pull waits for a finish: also how soon a ticker that lost the lease stops."""
RETRY_AFTER_ERROR_SECONDS = 1.0
MAX_CAS_ATTEMPTS = 10
NATS_ERRORS = (nats.errors.Error, TimeoutError)


class ChainContentionError(Exception):
    """A child's state kept changing under the leader (two leaders around a failover)."""


class ChainFollower:
    def __init__(
        self,
        js: JetStreamContext,
        book: ScheduleBook,
        lease: Leadership,
        publisher: JobPublisher,
        clock: Clock,
        metrics: TickerMetrics,
        decisions: ChainDecisions,
    ) -> None:
        self._js = js
        self._book = book
        self._lease = lease
        self._publisher = publisher
        self._clock = clock
        self._metrics = metrics
        self._decisions = decisions

    async def run(self) -> None:
        """Follow CHAINS whenever this ticker leads with its book loaded, until cancelled."""
        subscription = await self._js.pull_subscribe_bind(
            durable=names.CHAINS_CONSUMER, stream=names.STREAM_CHAINS
        )
        states = await self._js.key_value(names.KV_CHAIN_STATE)
        try:
            while True:
                await self._lease.leading.wait()
                await self._book.loaded.wait()
                while self._lease.is_leader:
                    await self._pull(subscription, states)
                await asyncio.sleep(FETCH_WAIT_SECONDS / 10)  # the lease is being lost
        finally:
            with contextlib.suppress(*NATS_ERRORS):
                await subscription.unsubscribe()

    async def _pull(
        self, subscription: JetStreamContext.PullSubscription, states: KeyValue
    ) -> None:
        try:
            msgs = await subscription.fetch(batch=1, timeout=FETCH_WAIT_SECONDS)
        except TimeoutError:
            return
        except NATS_ERRORS as exc:
            self._metrics.nats_errors.labels("chain_fetch").inc()
            log.warning("pulling chain finishes failed: %r", exc)
            await asyncio.sleep(RETRY_AFTER_ERROR_SECONDS)
            return
        for msg in msgs:
            if not self._lease.is_leader:
                await settle_quietly(msg.nak(), "hand back", "a chain finish")
                continue
            await self._handle(msg, states)

    async def _handle(self, msg: Msg, states: KeyValue) -> None:
        try:
            finish = ParentFinish.model_validate_json(msg.data)
        except ValidationError as exc:
            self._metrics.bad_chain_finishes.labels(bad_message_reason(exc)).inc()
            log.warning("terminating a bad chain finish on %s: %s", msg.subject, exc)
            await settle_quietly(msg.term(), "terminate", f"a bad chain finish on {msg.subject}")
            return
        sequence = msg.metadata.sequence.stream
        try:
            for child_id in self._book.children(finish.scheduled_job_id):
                child = self._book.get(child_id)
                if child is not None and child.link_to(finish.scheduled_job_id) is not None:
                    await self._apply(states, child, finish, sequence)
        except (*NATS_ERRORS, ChainContentionError) as exc:
            self._metrics.nats_errors.labels("chain").inc()
            log.warning("job %s: chaining failed (%r); retrying it", finish.job_id, exc)
            await settle_quietly(
                msg.nak(delay=RETRY_AFTER_ERROR_SECONDS), "nak", f"chain finish {finish.job_id}"
            )
            return
        await settle_quietly(msg.ack(), "ack", f"chain finish {finish.job_id}")

    async def _apply(
        self, states: KeyValue, child: ScheduledJob, finish: ParentFinish, sequence: int
    ) -> None:
        child_id = child.scheduled_job_id
        parents = [p for p in child.parents if p == finish.scheduled_job_id or p in self._book]
        for _ in range(MAX_CAS_ATTEMPTS):
            state, revision = await self._read(states, child_id)
            if state.firing is not None:
                await self._publish(child, state.firing)
                await self._fired(states, child_id, state, revision)
                continue
            step = advance(state, child, finish, sequence, parents, self._clock.now())
            if step.state is not None:
                revision = await self._write(states, child_id, step.state, revision)
                if revision is None:
                    continue
            if step.run is not None and step.state is not None:
                await self._publish(child, step.run)
                await self._fired(states, child_id, step.state, revision)
            if step.decision is not None:
                await self._decisions.record(step.decision)
            return
        raise ChainContentionError(f"the chain state of {child_id} kept changing")

    async def _publish(self, child: ScheduledJob, run: ChildRun) -> None:
        """The chained run, under its own id: published again, JetStream stores it once."""
        request = run_request_for(
            child,
            job_id=run.job_id,
            trigger=Trigger.CHAIN,
            priority=child.priority,
            created_at=run.created_at,
            scheduled_for=None,
            chain_parent=self._book.is_parent(child.scheduled_job_id),
            chained_from=run.chained_from,
        )
        if await self._publisher.publish_job(request):
            self._metrics.chain_runs.inc()

    async def _fired(
        self, states: KeyValue, child_id: str, state: ChainState, revision: int | None
    ) -> None:
        """Clear `state`'s `firing` once its run is stored. On a conflict the state is read
        again, and cleared if it still holds that run: left `firing`, it would be published
        again at the next finish, maybe past the duplicate window."""
        run = state.firing
        assert run is not None
        for _ in range(MAX_CAS_ATTEMPTS):
            done = state.model_copy(update={"firing": None, "last_run": run})
            if await self._write(states, child_id, done, revision) is not None:
                return
            state, revision = await self._read(states, child_id)
            if state.firing != run:
                return  # cleared meanwhile, or another run decided: not ours to clear
        raise ChainContentionError(f"the chain state of {child_id} kept changing")

    async def _read(self, states: KeyValue, child_id: str) -> tuple[ChainState, int | None]:
        """The child's state and its revision (None: no state yet, a fresh one)."""
        try:
            entry = await states.get(child_id)
        except (KeyNotFoundError, KeyDeletedError):
            return ChainState(), None
        try:
            return ChainState.model_validate_json(entry.value or b""), entry.revision
        except ValidationError as exc:
            self._metrics.bad_chain_finishes.labels("invalid_state").inc()
            log.warning(
                "replacing KV %s %r, not a chain state: %s", names.KV_CHAIN_STATE, child_id, exc
            )
            return ChainState(), entry.revision

    async def _write(
        self, states: KeyValue, child_id: str, state: ChainState, revision: int | None
    ) -> int | None:
        """Compare-and-set on `revision` (None: create); the new revision, or None if the
        state changed since it was read."""
        value = state.model_dump_json().encode()
        try:
            if revision is None:
                return await states.create(child_id, value)
            return await states.update(child_id, value, last=revision)
        except KeyWrongLastSequenceError:
            return None
