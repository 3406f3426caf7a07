"""The runner on a real nats-server, observed through the EVENTS and ITEMS streams."""

import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from natscron.demo import DemoListingsSite, listing_count, listing_params
from natscron_runner import RunnerService
from natscron_shared.contract import names
from natscron_shared.contract.enums import JobStatus, Priority, Trigger
from natscron_shared.contract.messages import ItemBatch, JobEvent, RunRequest
from natscron_shared.contract.pools import DEFAULT_POOL
from natscron_shared.nats.jetstream_layout import RUNNER_ACK_WAIT_SECONDS
from natscron_shared.runtime.clock import ManualClock
from natscron_shared.runtime.endpoints import Endpoints
from natscron_shared.runtime.settings import Settings
from tests.conftest import StartRunner
from tests.waiting import eventually

pytestmark = pytest.mark.integration


class Observer:
    """Everything the runner stored in EVENTS and ITEMS, in stream order."""

    def __init__(self) -> None:
        self.events: list[JobEvent] = []
        self.batches: list[ItemBatch] = []

    async def start(self, js: JetStreamContext) -> None:
        async def on_event(msg: Msg) -> None:
            self.events.append(JobEvent.model_validate_json(msg.data))

        async def on_batch(msg: Msg) -> None:
            self.batches.append(ItemBatch.model_validate_json(msg.data))

        await js.subscribe(f"{names.JOBS_EVENTS_PREFIX}.>", cb=on_event, ordered_consumer=True)
        await js.subscribe(f"{names.ITEMS_PREFIX}.>", cb=on_batch, ordered_consumer=True)

    def of(self, job_id: str) -> list[JobEvent]:
        return [event for event in self.events if event.job.job_id == job_id]

    def steps(self, job_id: str) -> list[tuple[str, int]]:
        return [(event.status.value, event.attempt) for event in self.of(job_id)]

    def finished(self, job_id: str) -> bool:
        return any(event.status.is_terminal for event in self.of(job_id))

    async def until_finished(self, *job_ids: str, within: float = 15) -> None:
        async def pending() -> list[str]:
            return [job_id for job_id in job_ids if not self.finished(job_id)]

        await eventually(pending, lambda left: not left, within=within, what="jobs finished")


@pytest.fixture
async def observer(nc: Client) -> Observer:
    watching = Observer()
    await watching.start(nc.jetstream())
    return watching


def run_request(
    scraper: str = "noop", priority: Priority = Priority.NORMAL, **fields: Any
) -> RunRequest:
    return RunRequest(
        job_id=f"adhoc_test_{uuid.uuid4().hex[:10]}",
        trigger=Trigger.ADHOC,
        priority=priority,
        created_at=datetime.now(UTC),
        scraper=scraper,
        **fields,
    )


async def submit(nc: Client, request: RunRequest) -> str:
    await nc.jetstream().publish(
        names.run_subject(request.pool, request.priority),
        request.model_dump_json().encode(),
        headers={"Nats-Msg-Id": request.job_id},
    )
    return request.job_id


async def jobs_queue_empty(nc: Client) -> None:
    async def queued() -> int:
        info = await nc.jetstream().stream_info(names.STREAM_JOBS)
        return int(info.state.messages)

    # Within two ack waits: under load an ack can be late, and the message is then
    # delivered once more and acked as a job already ended.
    await eventually(
        queued,
        lambda count: count == 0,
        within=2 * RUNNER_ACK_WAIT_SECONDS + 10,
        what="JOBS work queue empty",
    )


def sample(runner: RunnerService, name: str, **labels: str) -> float:
    return runner.registry.get_sample_value(name, labels) or 0.0


async def test_jobs_complete_with_events_and_item_batches(
    nc: Client, observer: Observer, start_runner: StartRunner
) -> None:
    runner = await start_runner()
    assert runner.is_ready()
    big = await submit(nc, run_request(params={"items": 150}))
    empty = await submit(nc, run_request(params={}))
    await observer.until_finished(big, empty)

    assert observer.steps(big) == [("running", 1), ("completed", 1)]
    running, completed = observer.of(big)
    assert running.runner_id == completed.runner_id == runner.runner_id
    assert completed.properties_scraped == 150 and completed.item_batches == 2
    assert completed.started_at == running.started_at
    assert completed.completed_at is not None and completed.started_at is not None
    assert completed.duration_ms is not None and completed.duration_ms >= 0

    def batches() -> list[ItemBatch]:
        return [batch for batch in observer.batches if batch.job_id == big]

    await eventually(
        lambda: _value(batches()), lambda found: len(found) == 2, what="two item batches"
    )
    assert [(b.batch, len(b.items)) for b in batches()] == [(0, 100), (1, 50)]
    keys = {item.key for b in batches() for item in b.items}
    assert keys == {f"noop-{big}-{i}" for i in range(150)}

    assert observer.steps(empty) == [("running", 1), ("completed", 1)]
    assert observer.of(empty)[-1].item_batches == 0
    await jobs_queue_empty(nc)
    assert sample(runner, "natscron_runner_jobs_total", status="completed") == 2
    assert sample(runner, "natscron_runner_items_scraped_total") == 150
    assert sample(runner, "natscron_runner_running") == 0
    await runner.stop()
    assert not runner.is_ready()


async def _value(value: Any) -> Any:
    return value


async def test_immediate_lane_is_pulled_before_the_normal_backlog(
    nc: Client, observer: Observer, start_runner: StartRunner
) -> None:
    await start_runner(runner_concurrency=1)
    normal = [await submit(nc, run_request(params={"delay_seconds": 0.4})) for _ in range(4)]

    async def first_started() -> bool:
        return any(event.status is JobStatus.RUNNING for event in observer.of(normal[0]))

    await eventually(first_started, what="first normal job running")
    urgent = await submit(nc, run_request(priority=Priority.IMMEDIATE))
    await observer.until_finished(*normal, urgent)

    started = [e.job.job_id for e in observer.events if e.status is JobStatus.RUNNING]
    assert started == [normal[0], urgent, *normal[1:]]


async def test_never_more_jobs_at_once_than_the_concurrency(
    nc: Client, observer: Observer, start_runner: StartRunner
) -> None:
    runner = await start_runner(runner_concurrency=2)
    jobs = [await submit(nc, run_request(params={"delay_seconds": 0.3})) for _ in range(6)]
    await observer.until_finished(*jobs)

    spans = []
    for job_id in jobs:
        done = observer.of(job_id)[-1]
        assert done.status is JobStatus.COMPLETED
        assert done.started_at is not None and done.completed_at is not None
        spans.append((done.started_at, done.completed_at))
    overlaps = [sum(1 for start, end in spans if start <= moment < end) for moment, _ in spans]
    assert max(overlaps) == 2
    assert sample(runner, "natscron_runner_jobs_total", status="completed") == 6


async def test_transient_failure_is_retried_with_backoff_then_completes(
    nc: Client, observer: Observer, start_runner: StartRunner
) -> None:
    await start_runner()
    job = await submit(
        nc,
        run_request(
            params={
                "items": 2,
                "fail_attempts": 1,
                "metadata": {"source": "test", "pages": [1, 2]},
            },
            max_retries=2,
            retry_backoff_seconds=0.2,
        ),
    )
    await observer.until_finished(job)

    assert observer.steps(job) == [("running", 1), ("pending", 2), ("running", 2), ("completed", 2)]
    retry = observer.of(job)[1]
    assert retry.error_type == "RuntimeError" and "on purpose" in (retry.error_message or "")
    assert observer.of(job)[-1].properties_scraped == 2
    await jobs_queue_empty(nc)

    first, last = retry.ended_attempt, observer.of(job)[-1].ended_attempt
    assert first is not None and last is not None
    assert (first.attempt, first.status, first.error_type) == (1, JobStatus.FAILED, "RuntimeError")
    assert first.error_message == retry.error_message
    assert first.started_at == observer.of(job)[0].started_at
    assert first.started_at is not None and first.completed_at >= first.started_at
    assert first.traceback is not None
    assert first.traceback.startswith("Traceback") and "in scrape" in first.traceback
    assert first.traceback.splitlines()[-1].startswith("RuntimeError: noop fails attempt 1")
    assert (last.attempt, last.status, last.error_type, last.traceback) == (
        2, JobStatus.COMPLETED, None, None,
    )  # fmt: skip
    assert retry.metadata == observer.of(job)[-1].metadata == {"source": "test", "pages": [1, 2]}


async def test_exhausted_retries_end_failed(
    nc: Client, observer: Observer, start_runner: StartRunner
) -> None:
    runner = await start_runner()
    job = await submit(
        nc,
        run_request(params={"fail_attempts": 5}, max_retries=1, retry_backoff_seconds=0.1),
    )
    await observer.until_finished(job)

    assert observer.steps(job) == [("running", 1), ("pending", 2), ("running", 2), ("failed", 2)]
    failed = observer.of(job)[-1]
    assert failed.error_type == "RuntimeError"
    assert failed.completed_at is not None and failed.duration_ms is not None
    await jobs_queue_empty(nc)
    assert sample(runner, "natscron_runner_jobs_total", status="retried") == 1
    assert sample(runner, "natscron_runner_jobs_total", status="failed") == 1


async def test_unknown_scraper_and_invalid_params_fail_without_retry(
    nc: Client, observer: Observer, start_runner: StartRunner
) -> None:
    await start_runner()
    unknown = await submit(nc, run_request(scraper="no-such-scraper", max_retries=3))
    invalid = await submit(nc, run_request(params={"items": "many"}, max_retries=3))
    await observer.until_finished(unknown, invalid)

    assert observer.steps(unknown) == [("running", 1), ("failed", 1)]
    assert observer.of(unknown)[-1].error_type == "UnknownScraperError"
    assert "no-such-scraper" in (observer.of(unknown)[-1].error_message or "")
    assert observer.steps(invalid) == [("running", 1), ("failed", 1)]
    assert observer.of(invalid)[-1].error_type == "InvalidParamsError"
    assert "items" in (observer.of(invalid)[-1].error_message or "")
    await jobs_queue_empty(nc)


async def test_timeout_fails_the_attempt_and_is_retried_while_retries_remain(
    nc: Client, observer: Observer, start_runner: StartRunner
) -> None:
    await start_runner()
    job = await submit(
        nc,
        run_request(
            params={"delay_seconds": 30},
            timeout_seconds=0.3,
            max_retries=1,
            retry_backoff_seconds=0.1,
        ),
    )
    await observer.until_finished(job)

    assert observer.steps(job) == [("running", 1), ("pending", 2), ("running", 2), ("failed", 2)]
    failed = observer.of(job)[-1]
    assert failed.error_type == "TimeoutError"
    assert "0.3s" in (failed.error_message or "")
    await jobs_queue_empty(nc)


async def test_malformed_requests_are_terminated_and_counted(
    nc: Client, observer: Observer, start_runner: StartRunner
) -> None:
    runner = await start_runner()
    subject = names.run_subject(DEFAULT_POOL, Priority.NORMAL)
    await nc.jetstream().publish(subject, b"{not json")
    await nc.jetstream().publish(subject, b'{"job_id": "missing-fields"}')
    dotted = run_request().model_copy(update={"job_id": "bad.job >"})
    await nc.jetstream().publish(subject, dotted.model_dump_json().encode())
    job = await submit(nc, run_request(params={"items": 1}))
    await observer.until_finished(job)

    assert observer.steps(job) == [("running", 1), ("completed", 1)]
    await jobs_queue_empty(nc)
    assert sample(runner, "natscron_runner_bad_messages_total", reason="malformed_json") == 1
    assert sample(runner, "natscron_runner_bad_messages_total", reason="invalid_message") == 1
    assert sample(runner, "natscron_runner_bad_messages_total", reason="invalid_job_id") == 1
    assert runner.is_ready()


async def test_progress_acks_are_sent_while_a_job_runs(
    settings: Settings, endpoints: Endpoints, nc: Client, observer: Observer
) -> None:
    progress: list[bytes] = []

    async def on_ack(msg: Msg) -> None:
        progress.append(msg.data)

    await nc.subscribe(f"$JS.ACK.{names.STREAM_JOBS}.>", cb=on_ack)
    clock = ManualClock(datetime.now(UTC))
    quick_stop = settings.model_copy(update={"shutdown_grace_seconds": 0.1})
    runner = RunnerService(quick_stop, endpoints, clock=clock)
    await runner.start()
    try:
        job = await submit(nc, run_request(params={"delay_seconds": 30}))
        await eventually(_value_of(lambda: observer.steps(job)), what="job running")

        async def beat() -> list[bytes]:
            await clock.advance(timedelta(seconds=15))
            return progress

        await eventually(beat, lambda acks: b"+WPI" in acks, within=5, what="progress ack")
    finally:
        await runner.stop()
    assert observer.steps(job) == [("running", 1)]


async def test_stop_waits_for_jobs_that_finish_within_the_grace(
    nc: Client, observer: Observer, start_runner: StartRunner
) -> None:
    runner = await start_runner(shutdown_grace_seconds=10)
    job = await submit(nc, run_request(params={"delay_seconds": 0.5, "items": 1}))
    await eventually(_value_of(lambda: observer.steps(job)), what="job running")
    await runner.stop()

    assert observer.steps(job) == [("running", 1), ("completed", 1)]
    await jobs_queue_empty(nc)


async def test_stop_hands_unfinished_jobs_back_to_another_runner(
    nc: Client, observer: Observer, start_runner: StartRunner
) -> None:
    first = await start_runner(shutdown_grace_seconds=0.2)
    job = await submit(nc, run_request(params={"delay_seconds": 1.5, "items": 3}))
    await eventually(_value_of(lambda: observer.steps(job)), what="job running")

    began = time.monotonic()
    await first.stop()
    assert time.monotonic() - began < 3, "stop should not wait for the job beyond the grace"
    assert sample(first, "natscron_runner_jobs_total", status="handed_back") == 1
    assert observer.steps(job) == [("running", 1)]

    second = await start_runner()
    await observer.until_finished(job)
    # A hand-back is no attempt: the same attempt runs again, its second `running` event
    # has the msg id of the first, and JetStream drops it as a duplicate.
    assert observer.steps(job) == [("running", 1), ("completed", 1)]
    assert observer.of(job)[-1].runner_id == second.runner_id != first.runner_id
    await jobs_queue_empty(nc)


def _value_of(read: Callable[[], Any]) -> Callable[[], Awaitable[Any]]:
    async def probe() -> Any:
        return read()

    return probe


async def test_http_job_scrapes_every_page_of_the_demo_site(
    nc: Client, observer: Observer, start_runner: StartRunner
) -> None:
    site = DemoListingsSite()
    await site.start()
    try:
        await start_runner()
        job = await submit(
            nc, run_request(scraper="http", params=listing_params(site.url, "denver-co"))
        )
        await observer.until_finished(job)
    finally:
        await site.stop()

    expected = listing_count("denver-co", "for_sale")
    done = observer.of(job)[-1]
    assert done.status is JobStatus.COMPLETED, done.error_message
    assert done.properties_scraped == expected
    await eventually(
        _value_of(lambda: sum(len(b.items) for b in observer.batches if b.job_id == job)),
        lambda count: count == expected,
        what="all listings in item batches",
    )


async def test_item_batches_beyond_the_in_flight_bound_are_all_stored_and_counted(
    nc: Client, observer: Observer, start_runner: StartRunner
) -> None:
    await start_runner()
    job = await submit(nc, run_request(params={"items": 1000}))
    await observer.until_finished(job)

    completed = observer.of(job)[-1]
    assert observer.steps(job) == [("running", 1), ("completed", 1)]
    assert completed.item_batches == 10 and completed.properties_scraped == 1000
    await eventually(
        _value_of(lambda: sorted(b.batch for b in observer.batches if b.job_id == job)),
        lambda numbers: numbers == list(range(10)),
        what="ten item batches",
    )


async def test_a_batch_jetstream_refuses_hands_the_job_back_without_a_final_event(
    nc: Client, observer: Observer, start_runner: StartRunner
) -> None:
    js = nc.jetstream()
    config = (await js.stream_info(names.STREAM_ITEMS)).config
    limit = config.max_msg_size
    config.max_msg_size = 64
    await js.update_stream(config)
    runner = await start_runner()
    job = await submit(nc, run_request(params={"items": 3}))

    async def refused() -> float:
        return sample(runner, "natscron_runner_nats_errors_total", operation="publish")

    await eventually(refused, lambda count: count >= 1, what="the batch refused")
    await eventually(_value_of(lambda: observer.steps(job)), what="the running event stored")
    assert not observer.finished(job)

    config.max_msg_size = limit
    await js.update_stream(config)
    await observer.until_finished(job)
    terminal = [event for event in observer.of(job) if event.status.is_terminal]
    assert [event.status for event in terminal] == [JobStatus.COMPLETED]
    assert terminal[0].attempt == 1 and terminal[0].item_batches == 1, "a hand-back is no attempt"
    await jobs_queue_empty(nc)
