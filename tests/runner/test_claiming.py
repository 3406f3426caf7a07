"""`natscron_runner.claiming` on a real nats-server: the claims of KV `running` taken,
renewed and released as its docstrings promise, the overlap policies `forbid` and
`replace`, and what happens when NATS or another run gets in the way. (Across runner
processes, end to end: tests/runner/test_run_controls.py.)"""

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from nats.aio.client import Client
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue
from prometheus_client import CollectorRegistry

from natscron.provisioning.provision import provision
from natscron_runner.claiming import (
    DEFER_CLAIMED,
    DEFER_NATS,
    NATS_ERROR_DELAY_SECONDS,
    REPLACE_BY,
    REPLACE_MARGIN_SECONDS,
    SKIP_OVERLAP,
    SKIP_REPLACE_TIMEOUT,
    ClaimBook,
    JobClaims,
    claim_ttl_of,
)
from natscron_runner.metrics import RunnerMetrics
from natscron_shared.contract import names
from natscron_shared.contract.cancel import CancelMarker
from natscron_shared.contract.claims import JobClaim, ScheduleClaim
from natscron_shared.contract.enums import ConcurrencyPolicy, Priority, Trigger
from natscron_shared.contract.messages import RunRequest
from natscron_shared.nats.jetstream_check import NotProvisionedError
from natscron_shared.nats.jetstream_layout import CLAIM_TTL_SECONDS, jetstream_layout
from natscron_shared.runtime.clock import ManualClock
from tests.servers import Server
from tests.waiting import eventually

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SCHEDULE = "nightly-report"
SCHEDULE_KEY = names.schedule_claim_key(SCHEDULE)
SHORT_TTL_SECONDS = 1.0
"""KV `running`'s TTL where a test needs a claim to lapse."""
QUICK_BEAT_TTL = 0.3
"""A book's TTL for tests of the heartbeat: it renews every 0.1 s."""


def run_of(policy: ConcurrencyPolicy, scheduled_job_id: str | None = SCHEDULE) -> RunRequest:
    return RunRequest(
        job_id=f"{scheduled_job_id or 'adhoc'}_{uuid.uuid4().hex[:8]}",
        scheduled_job_id=scheduled_job_id,
        trigger=Trigger.SCHEDULED if scheduled_job_id else Trigger.ADHOC,
        priority=Priority.NORMAL,
        scheduled_for=T0 if scheduled_job_id else None,
        created_at=T0,
        scraper="noop",
        concurrency_policy=policy,
        attempt=2,
    )


@dataclass
class Runner:
    """One runner's `ClaimBook`, with its metrics and the reasons its jobs were stopped."""

    book: ClaimBook
    registry: CollectorRegistry
    lost: list[str] = field(default_factory=list)

    def claims(self, request: RunRequest) -> JobClaims:
        return self.book.for_job(request, self.lost.append)

    def count(self, metric: str, **labels: str) -> float:
        return self.registry.get_sample_value(metric, labels) or 0.0

    def claimed(self, kind: str, outcome: str) -> float:
        return self.count("natscron_runner_claims_total", kind=kind, outcome=outcome)


async def runner_on(client: Client, runner_id: str, ttl_seconds: float = 30.0) -> Runner:
    js = client.jetstream()
    registry = CollectorRegistry()
    book = ClaimBook(
        await js.key_value(names.KV_RUNNING),
        await js.key_value(names.KV_CANCELS),
        ttl_seconds,
        runner_id,
        ManualClock(T0),
        RunnerMetrics.on(registry),
    )
    return Runner(book, registry)


async def holder_of(bucket: KeyValue, key: str = SCHEDULE_KEY) -> ScheduleClaim | None:
    try:
        entry = await bucket.get(key)
    except KeyNotFoundError:
        return None
    return ScheduleClaim.model_validate_json(entry.value or b"")


async def revision_of(bucket: KeyValue, key: str) -> int:
    revision = (await bucket.get(key)).revision
    assert revision is not None
    return revision


async def present(bucket: KeyValue, key: str) -> bool:
    try:
        await bucket.get(key)
    except KeyNotFoundError:
        return False
    return True


@pytest.fixture
async def short_ttl_nc(bare_nats_server: Server) -> AsyncIterator[Client]:
    """A client of a server whose KV `running` keeps a claim `SHORT_TTL_SECONDS`."""
    client = Client()
    await client.connect(bare_nats_server.url)
    layout = jetstream_layout(1, lease_ttl_seconds=2.0, claim_ttl_seconds=SHORT_TTL_SECONDS)
    await provision(client.jetstream(), layout)
    yield client
    await client.close()


@pytest.fixture
async def own_nc(nats_server: Server) -> AsyncIterator[Client]:
    """A client of the provisioned server that a test may close."""
    client = Client()
    await client.connect(nats_server.url)
    yield client
    await client.close()


# -- the claims' lifetime ------------------------------------------------------------------


async def test_claims_last_as_long_as_the_bucket_keeps_a_value(nc: Client) -> None:
    running = await nc.jetstream().key_value(names.KV_RUNNING)
    assert await claim_ttl_of(running) == CLAIM_TTL_SECONDS


async def test_a_bucket_without_a_ttl_is_refused_with_a_sentence(
    bare_nats_server: Server,
) -> None:
    bare = Client()
    await bare.connect(bare_nats_server.url)
    try:
        forever = await bare.jetstream().create_key_value(bucket=names.KV_RUNNING)
        with pytest.raises(NotProvisionedError) as refused:
            await claim_ttl_of(forever)
    finally:
        await bare.close()
    assert str(refused.value).endswith(
        "KV running has no TTL, so a dead runner's claims would never lapse;"
        " run `natscron provision`"
    )


async def test_a_job_allowed_to_overlap_claims_only_itself_and_releases_it(nc: Client) -> None:
    runner = await runner_on(nc, "runner-a")
    request = run_of(ConcurrencyPolicy.ALLOW)
    claims = runner.claims(request)

    assert await claims.acquire() is None
    entry = await runner.book.running.get(names.running_job_key(request.job_id))
    assert JobClaim.model_validate_json(entry.value or b"") == JobClaim(
        job_id=request.job_id,
        scheduled_job_id=SCHEDULE,
        runner_id="runner-a",
        attempt=2,
        started_at=T0,
    )
    assert await holder_of(runner.book.running) is None
    overlapping = (await runner_on(nc, "runner-b")).claims(run_of(ConcurrencyPolicy.ALLOW))
    assert await overlapping.acquire() is None
    await overlapping.release()

    await claims.release()
    await claims.release()  # idempotent
    assert not await present(runner.book.running, names.running_job_key(request.job_id))
    assert (runner.claimed("job", "taken"), runner.claimed("job", "released")) == (1, 1)


async def test_the_heartbeat_renews_both_claims_until_release(nc: Client) -> None:
    runner = await runner_on(nc, "runner-a", ttl_seconds=QUICK_BEAT_TTL)
    request = run_of(ConcurrencyPolicy.FORBID)
    claims = runner.claims(request)
    assert await claims.acquire() is None
    running = runner.book.running
    job_key = names.running_job_key(request.job_id)
    first = {key: await revision_of(running, key) for key in (job_key, SCHEDULE_KEY)}

    async def revisions() -> dict[str, int]:
        return {key: await revision_of(running, key) for key in first}

    await eventually(
        revisions,
        lambda now: all(now[key] > first[key] for key in first),
        within=5,
        what="both claims renewed",
    )
    await claims.release()
    assert not await present(running, job_key) and not await present(running, SCHEDULE_KEY)
    assert runner.claimed("schedule", "released") == 1 and runner.lost == []


# -- forbid ----------------------------------------------------------------------------------


async def test_forbid_skips_an_overlapping_run_naming_the_one_it_overlaps(nc: Client) -> None:
    first, second = await runner_on(nc, "runner-a"), await runner_on(nc, "runner-b")
    held, overlapping = run_of(ConcurrencyPolicy.FORBID), run_of(ConcurrencyPolicy.FORBID)
    holding = first.claims(held)
    assert await holding.acquire() is None
    assert await holder_of(first.book.running) == ScheduleClaim(
        scheduled_job_id=SCHEDULE, job_id=held.job_id, runner_id="runner-a", since=T0
    )

    refusal = await second.claims(overlapping).acquire()

    assert refusal is not None
    assert refusal.skip == SKIP_OVERLAP
    assert refusal.message == f"overlaps job {held.job_id} still running on runner runner-a"
    running = second.book.running
    assert not await present(running, names.running_job_key(overlapping.job_id))
    await holding.release()
    later = second.claims(overlapping)
    assert await later.acquire() is None
    holder = await holder_of(running)
    assert holder is not None and holder.job_id == overlapping.job_id
    await later.release()


async def test_the_previous_delivery_of_the_same_job_hands_the_message_back(nc: Client) -> None:
    """Its runner died or hands it back: the message waits a renewal interval, unskipped."""
    first, second = await runner_on(nc, "runner-a"), await runner_on(nc, "runner-b")
    request = run_of(ConcurrencyPolicy.REPLACE)
    holding = first.claims(request)
    assert await holding.acquire() is None

    refusal = await second.claims(request).acquire()

    assert refusal is not None
    assert (refusal.skip, refusal.defer) == (None, DEFER_CLAIMED)
    assert refusal.delay == second.book.ttl_seconds / 3
    assert refusal.message == f"its previous delivery (runner runner-a) still holds {SCHEDULE_KEY}"
    assert (await second.book.cancels.status()).values == 0  # nothing to cancel
    await holding.release()


async def test_an_unreadable_claim_is_held_by_an_unknown_job(nc: Client) -> None:
    runner = await runner_on(nc, "runner-b")
    await runner.book.running.put(SCHEDULE_KEY, b"not a claim")

    refusal = await runner.claims(run_of(ConcurrencyPolicy.FORBID)).acquire()

    assert refusal is not None and refusal.skip == SKIP_OVERLAP
    assert refusal.message == "overlaps job (unknown) still running on runner (unknown)"


# -- replace ---------------------------------------------------------------------------------


async def test_replace_cancels_the_holder_and_runs_once_it_let_go(nc: Client) -> None:
    first, second = await runner_on(nc, "runner-a"), await runner_on(nc, "runner-b")
    old, new = run_of(ConcurrencyPolicy.REPLACE), run_of(ConcurrencyPolicy.REPLACE)
    holding = first.claims(old)
    assert await holding.acquire() is None
    replacing = second.claims(new)
    taking = asyncio.create_task(replacing.acquire())

    async def marker() -> CancelMarker | None:
        try:
            entry = await second.book.cancels.get(old.job_id)
        except KeyNotFoundError:
            return None
        return CancelMarker.model_validate_json(entry.value or b"")

    asked = await eventually(marker, lambda found: found is not None, what="cancel marker")
    assert asked == CancelMarker(
        job_id=old.job_id, reason=f"replaced by job {new.job_id}", by=REPLACE_BY, at=T0
    )
    assert not taking.done()  # it waits for the holder to let go
    await holding.release()  # what the holder's runner does once it stopped the job

    assert await taking is None
    holder = await holder_of(second.book.running)
    assert holder is not None and (holder.job_id, holder.runner_id) == (new.job_id, "runner-b")
    replacements = "natscron_runner_replacements_total"
    assert second.count(replacements, outcome="released") == 1
    await replacing.release()


async def test_replace_takes_over_once_a_dead_runners_claim_lapses(short_ttl_nc: Client) -> None:
    runner = await runner_on(short_ttl_nc, "runner-b", ttl_seconds=SHORT_TTL_SECONDS)
    dead = ScheduleClaim(
        scheduled_job_id=SCHEDULE, job_id="nightly-report_dead", runner_id="gone", since=T0
    )
    await runner.book.running.put(SCHEDULE_KEY, dead.model_dump_json().encode())
    new = run_of(ConcurrencyPolicy.REPLACE)
    claims = runner.claims(new)

    assert await claims.acquire() is None

    holder = await holder_of(runner.book.running)
    assert holder is not None and holder.job_id == new.job_id
    assert runner.count("natscron_runner_replacements_total", outcome="lapsed") == 1
    await claims.release()


async def test_replace_skips_when_the_holder_outlives_the_wait(nc: Client) -> None:
    """The wait is the book's TTL and a margin: a live holder would have let go by then."""
    first = await runner_on(nc, "runner-a")
    second = await runner_on(nc, "runner-b", ttl_seconds=QUICK_BEAT_TTL)
    old, new = run_of(ConcurrencyPolicy.REPLACE), run_of(ConcurrencyPolicy.REPLACE)
    holding = first.claims(old)
    assert await holding.acquire() is None

    refusal = await second.claims(new).acquire()

    assert refusal is not None and refusal.skip == SKIP_REPLACE_TIMEOUT
    waited = QUICK_BEAT_TTL + REPLACE_MARGIN_SECONDS
    assert refusal.message == (
        f"job {old.job_id} on runner runner-a was asked to stop for it but still ran"
        f" after {waited:g}s"
    )
    assert second.count("natscron_runner_replacements_total", outcome="timeout") == 1
    assert not await present(second.book.running, names.running_job_key(new.job_id))
    holder = await holder_of(first.book.running)
    assert holder is not None and holder.job_id == old.job_id
    await holding.release()


async def test_replace_waits_out_an_unreadable_claim_rather_than_spin(nc: Client) -> None:
    """No job to cancel: the claim must lapse, and past the wait the run is skipped."""
    runner = await runner_on(nc, "runner-b", ttl_seconds=QUICK_BEAT_TTL)
    await runner.book.running.put(SCHEDULE_KEY, b"not a claim")

    refusal = await runner.claims(run_of(ConcurrencyPolicy.REPLACE)).acquire()

    assert refusal is not None and refusal.skip == SKIP_REPLACE_TIMEOUT
    assert runner.count("natscron_runner_replacements_total", outcome="released") == 0
    assert runner.count("natscron_runner_replacements_total", outcome="timeout") == 1
    assert (await runner.book.cancels.status()).values == 0  # no job to cancel


# -- renewals that find the claim changed ----------------------------------------------------


async def test_a_renewal_retakes_a_claim_that_lapsed(nc: Client) -> None:
    runner = await runner_on(nc, "runner-a", ttl_seconds=QUICK_BEAT_TTL)
    request = run_of(ConcurrencyPolicy.FORBID)
    claims = runner.claims(request)
    assert await claims.acquire() is None
    await runner.book.running.purge(SCHEDULE_KEY)  # as if it had expired

    await eventually(
        lambda: _value(runner.claimed("schedule", "lapsed")), lambda n: n == 1, within=5
    )
    holder = await holder_of(runner.book.running)
    assert holder is not None and holder.job_id == request.job_id
    assert runner.lost == []
    await claims.release()
    assert not await present(runner.book.running, SCHEDULE_KEY)


async def test_a_renewal_that_finds_another_run_holding_the_claim_stops_the_job(
    nc: Client,
) -> None:
    runner = await runner_on(nc, "runner-a", ttl_seconds=QUICK_BEAT_TTL)
    claims = runner.claims(run_of(ConcurrencyPolicy.FORBID))
    assert await claims.acquire() is None
    other = ScheduleClaim(
        scheduled_job_id=SCHEDULE, job_id="nightly-report_other", runner_id="runner-b", since=T0
    )
    await runner.book.running.purge(SCHEDULE_KEY)
    await runner.book.running.create(SCHEDULE_KEY, other.model_dump_json().encode())

    await eventually(lambda: _value(len(runner.lost)), lambda n: n == 1, within=5)
    assert runner.lost == [
        f"its claim {SCHEDULE_KEY} lapsed (renewals late by over {QUICK_BEAT_TTL:g}s)"
        " and job nightly-report_other on runner runner-b took it"
    ]
    assert runner.claimed("schedule", "lost") == 1
    await claims.release()
    assert await holder_of(runner.book.running) == other  # never someone else's


async def test_a_renewal_adopts_its_own_late_write(nc: Client) -> None:
    runner = await runner_on(nc, "runner-a", ttl_seconds=QUICK_BEAT_TTL)
    claims = runner.claims(run_of(ConcurrencyPolicy.FORBID))
    assert await claims.acquire() is None
    running = runner.book.running
    ours = (await running.get(SCHEDULE_KEY)).value or b""
    late = await running.put(SCHEDULE_KEY, ours)  # a write of ours the renewal did not see

    await eventually(
        lambda: revision_of(running, SCHEDULE_KEY),
        lambda now: now > late + 1,
        within=5,
        what="renewed past it",
    )
    assert runner.lost == []
    assert (runner.claimed("schedule", "lapsed"), runner.claimed("schedule", "lost")) == (0, 0)
    await claims.release()
    assert not await present(running, SCHEDULE_KEY)


async def test_a_claim_retaken_by_another_run_is_never_released_by_the_first(
    nc: Client,
) -> None:
    first, second = await runner_on(nc, "runner-a"), await runner_on(nc, "runner-b")
    stalled, later = run_of(ConcurrencyPolicy.FORBID), run_of(ConcurrencyPolicy.FORBID)
    stalled_claims = first.claims(stalled)
    assert await stalled_claims.acquire() is None
    await first.book.running.purge(SCHEDULE_KEY)  # lapsed while its runner stalled
    later_claims = second.claims(later)
    assert await later_claims.acquire() is None

    await stalled_claims.release()

    holder = await holder_of(second.book.running)
    assert holder is not None and holder.job_id == later.job_id
    assert first.claimed("schedule", "released") == 0
    assert first.claimed("job", "released") == 1
    await later_claims.release()


# -- NATS unavailable ------------------------------------------------------------------------


async def test_a_claim_nats_refuses_hands_the_message_back_for_later(own_nc: Client) -> None:
    runner = await runner_on(own_nc, "runner-a")
    await own_nc.close()

    refusal = await runner.claims(run_of(ConcurrencyPolicy.FORBID)).acquire()

    assert refusal is not None
    assert (refusal.skip, refusal.defer) == (None, DEFER_NATS)
    assert refusal.delay == NATS_ERROR_DELAY_SECONDS
    assert refusal.message == "KV running unavailable: ConnectionClosedError"
    assert runner.count("natscron_runner_nats_errors_total", operation="claim") == 1


async def test_renewals_and_release_without_nats_are_counted_never_raised(
    own_nc: Client, nc: Client
) -> None:
    runner = await runner_on(own_nc, "runner-a", ttl_seconds=QUICK_BEAT_TTL)
    request = run_of(ConcurrencyPolicy.FORBID)
    claims = runner.claims(request)
    assert await claims.acquire() is None
    await own_nc.close()

    await eventually(
        lambda: _value(runner.count("natscron_runner_nats_errors_total", operation="claim")),
        lambda n: n >= 2,
        within=5,
        what="failed renewals counted",
    )
    await claims.release()  # the claims are left to the TTL

    assert runner.claimed("job", "released") == runner.claimed("schedule", "released") == 0
    running = await nc.jetstream().key_value(names.KV_RUNNING)
    assert await present(running, names.running_job_key(request.job_id))
    assert await present(running, SCHEDULE_KEY)


async def _value(value: float) -> float:
    return value
