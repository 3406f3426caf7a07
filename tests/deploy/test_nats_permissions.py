"""Least privilege on a real nats-server running the committed `deploy/nats/auth.conf`:
each service works as its own user, and the rules that matter refuse what they must."""

import json
import shutil
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path

import nats.errors
import nats.js.errors
import pytest
from nats.aio.client import Client
from pydantic import SecretStr
from pymongo.asynchronous.database import AsyncDatabase

from natscron.cli.connect import nats_client
from natscron.cli.provision import provision_from_settings
from natscron.embedded import EmbeddedServer, start_nats
from natscron.provisioning.nats_permissions import USERS, auth_conf
from natscron_api import ApiService
from natscron_recorder import RecorderService
from natscron_shared.contract import names
from natscron_shared.contract.enums import JobStatus, Priority, Trigger
from natscron_shared.contract.messages import JobEvent, RunRequest
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.contract.pools import DEFAULT_POOL
from natscron_shared.contract.storage import Document
from natscron_shared.nats.auth import connect_options
from natscron_shared.nats.job_events import last_job_event
from natscron_shared.nats.schedule_bucket import put_schedules
from natscron_shared.runtime.endpoints import Endpoints
from natscron_shared.runtime.settings import Settings
from natscron_ticker import TickerService
from tests.api.api_support import api_settings, client, running_api
from tests.conftest import StartRunner
from tests.runner.sites import Reply, graph_route, serving
from tests.stack import publish
from tests.waiting import eventually

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
AUTH_CONF = REPO / "deploy" / "nats" / "auth.conf"
DENIED_WITHIN_SECONDS = 1.0
EVERY_SECOND = ScheduledJob(
    scheduled_job_id="secured-every-second",
    name="Every second, on a secured server",
    cron_expression="* * * * * *",
    scraper="noop",
    params={"items": 2},
)
AFTER_LAST_RUN = ScheduledJob(
    scheduled_job_id="secured-after-last-run",
    name="A second after its last run, on a secured server",
    interval={"seconds": 1, "from": "last_run"},
    scraper="noop",
)


def password_of(user: str) -> str:
    return f"test-password-of-{user}"


def as_user(settings: Settings, user: str) -> Settings:
    return settings.model_copy(
        update={"nats_user": user, "nats_password": SecretStr(password_of(user))}
    )


def test_committed_auth_files_are_the_generated_ones() -> None:
    generated = auth_conf()
    for committed in (AUTH_CONF, REPO / "k8s" / "base" / "nats" / "auth.conf"):
        path = committed.relative_to(REPO)
        assert committed.read_text() == generated, (
            f"{path} is stale: regenerate it with"
            f" `.venv/bin/python -m natscron.provisioning.nats_permissions > {path}`"
        )


@pytest.fixture
async def bare_nats_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[EmbeddedServer]:
    """nats-server with the committed users and permissions; their passwords in its
    environment, as compose and Kubernetes give them."""
    for user in USERS:
        monkeypatch.setenv(user.password_variable, password_of(user.name))
    shutil.copy(AUTH_CONF, tmp_path / "auth.conf")
    config = tmp_path / "natscron.conf"
    config.write_text("include ./auth.conf\n")
    server = await start_nats(tmp_path, config=config)
    yield server
    await server.stop()


@pytest.fixture
async def nats_server(bare_nats_server: EmbeddedServer, tmp_path: Path) -> EmbeddedServer:
    """Provisioned as `natscron provision` does it, by the `provision` user."""
    admin = as_user(Settings(nats_url=bare_nats_server.url, data_dir=tmp_path), "provision")
    changes = await provision_from_settings(admin, lambda _: None)
    assert changes, "provisioning created nothing"
    return bare_nats_server


async def connected(url: str, settings: Settings, user: str, errors: list[Exception]) -> Client:
    async def collect(error: Exception) -> None:
        errors.append(error)

    client = Client()
    await client.connect(url, error_cb=collect, **connect_options(as_user(settings, user)))
    return client


def violations(server: EmbeddedServer) -> list[str]:
    log = Path(server.log_file.name).read_text()
    return [line for line in log.splitlines() if "Violation" in line]


async def test_a_runner_cannot_publish_a_run_request(
    nats_server: EmbeddedServer, settings: Settings
) -> None:
    errors: list[Exception] = []
    runner = await connected(nats_server.url, settings, "runner", errors)
    request = RunRequest(
        job_id="forged_1",
        trigger=Trigger.ADHOC,
        priority=Priority.IMMEDIATE,
        created_at=datetime.now(UTC),
        scraper="noop",
    )
    try:
        with pytest.raises(nats.errors.TimeoutError):
            await runner.jetstream().publish(
                names.run_subject(request.pool, request.priority),
                request.model_dump_json().encode(),
                timeout=DENIED_WITHIN_SECONDS,
            )
    finally:
        await runner.close()
    assert any("permissions violation" in str(error) for error in errors), errors
    async with nats_client(nats_server.url, as_user(settings, "provision")) as admin:
        jobs = await admin.jetstream().stream_info(names.STREAM_JOBS)
    assert jobs.state.messages == 0


@pytest.mark.parametrize("pool", [DEFAULT_POOL, "browser"])
async def test_a_runner_retries_a_failed_attempt_on_its_own_subject(
    nats_server: EmbeddedServer,
    settings: Settings,
    tmp_path: Path,
    start_runner: StartRunner,
    pool: str,
) -> None:
    """The retry goes to `jobs.retry.<pool>.<lane>`, which JOBS stores as
    `jobs.run.<pool>.<lane>`: attempt 2 runs, and no publish of the runner was refused,
    whichever pool's lanes it takes jobs from."""
    admin = as_user(Settings(nats_url=nats_server.url, data_dir=tmp_path), "provision")
    await provision_from_settings(
        admin.model_copy(update={"runner_pools": (pool,)}), lambda _: None
    )
    await start_runner(
        nats_user="runner", nats_password=SecretStr(password_of("runner")), runner_pool=pool
    )
    request = RunRequest(
        job_id="secured_retry_1",
        trigger=Trigger.ADHOC,
        priority=Priority.NORMAL,
        created_at=datetime.now(UTC),
        scraper="noop",
        params={"items": 1, "fail_attempts": 1},
        pool=pool,
        max_retries=1,
        retry_backoff_seconds=0.1,
    )
    errors: list[Exception] = []
    ticker = await connected(nats_server.url, settings, "ticker", errors)
    try:
        js = ticker.jetstream()
        await js.publish(
            names.run_subject(request.pool, request.priority),
            request.model_dump_json().encode(),
            headers={"Nats-Msg-Id": request.job_id},
        )

        async def last_event() -> JobEvent | None:
            subject = names.job_event_subject(request.job_id)
            try:
                message = await js.get_last_msg(names.STREAM_EVENTS, subject)
            except nats.js.errors.NotFoundError:
                return None
            return JobEvent.model_validate_json(message.data or b"")

        done = await eventually(
            last_event,
            lambda event: event is not None and event.status is JobStatus.COMPLETED,
            what="attempt 2 completed",
            within=15,
        )
    finally:
        await ticker.close()
    assert done is not None and done.attempt == 2 and done.properties_scraped == 1
    assert violations(nats_server) == []
    assert errors == []


async def test_a_runner_crawls_politely_and_resumes_as_its_own_user(
    nats_server: EmbeddedServer, settings: Settings, start_runner: StartRunner
) -> None:
    """Slots, pace and a 429's backoff (KV host_slots, host_pace, host_backoff), and a
    failed attempt resumed from its checkpoint (KV checkpoints, ITEMS read back)."""
    await start_runner(nats_user="runner", nats_password=SecretStr(password_of("runner")))
    answers = {"/b": [Reply(429, headers={"Retry-After": "0"}), Reply(500)]}
    graph = graph_route({"/": ["/a", "/b"], "/a": [], "/b": []})

    def route(target: str) -> Reply:
        queued = answers.get(target)
        return queued.pop(0) if queued else graph(target)

    errors: list[Exception] = []
    ticker = await connected(nats_server.url, settings, "ticker", errors)
    try:
        async with serving(route) as site:
            request = RunRequest(
                job_id="secured_crawl_1",
                trigger=Trigger.ADHOC,
                priority=Priority.NORMAL,
                created_at=datetime.now(UTC),
                scraper="crawl",
                params={"urls": [site.url + "/"], "max_requests_per_second": 20},
                max_retries=1,
                retry_backoff_seconds=0.1,
            )
            js = ticker.jetstream()
            await js.publish(
                names.run_subject(request.pool, request.priority),
                request.model_dump_json().encode(),
                headers={"Nats-Msg-Id": request.job_id},
            )

            async def last_event() -> JobEvent | None:
                return await last_job_event(js, request.job_id)

            done = await eventually(
                last_event,
                lambda event: event is not None and event.status.is_terminal,
                what="the crawl finished",
                within=20,
            )
    finally:
        await ticker.close()
    assert done is not None and done.status is JobStatus.COMPLETED, done
    assert done.attempt == 2 and done.properties_scraped == 3
    assert site.fetches("/") == site.fetches("/a") == 1 and site.fetches("/b") == 3
    assert violations(nats_server) == []
    assert errors == []


@pytest.mark.parametrize("inboxes", ["_INBOX.>", "_INBOX.ticker.>"])
async def test_a_user_cannot_listen_to_the_replies_of_others(
    nats_server: EmbeddedServer, settings: Settings, inboxes: str
) -> None:
    """Else the API could read the lease in the ticker's answers, or the jobs a runner pulls."""
    errors: list[Exception] = []
    api = await connected(nats_server.url, settings, "api", errors)
    try:
        await api.subscribe(inboxes)

        async def refused() -> list[str]:
            return [str(error) for error in errors if "permissions violation" in str(error)]

        said = await eventually(refused, what="the subscription refused", within=5)
    finally:
        await api.close()
    assert inboxes.lower() in said[0]


async def test_services_work_as_their_own_users_and_the_api_cannot_read_the_lease(
    nats_server: EmbeddedServer,
    settings: Settings,
    endpoints: Endpoints,
    start_runner: StartRunner,
    mongo_db: AsyncDatabase[Document],
) -> None:
    async with AsyncExitStack() as stack:
        ticker = TickerService(as_user(settings, "ticker"), endpoints)
        recorder = RecorderService(as_user(settings, "recorder"), endpoints)
        for service in (recorder, ticker):
            await service.start()
            stack.push_async_callback(service.stop)
        await start_runner(nats_user="runner", nats_password=SecretStr(password_of("runner")))
        async with nats_client(nats_server.url, as_user(settings, "cli")) as cli:
            await put_schedules(cli.jetstream(), [EVERY_SECOND, AFTER_LAST_RUN])
        scheduled = await eventually(
            lambda: completed_runs(mongo_db, Trigger.SCHEDULED), what="a scheduled run recorded"
        )
        assert scheduled[0]["properties_scraped"] == 2
        # The runner records its end in KV last_runs, the ticker fires the next one by it.
        await eventually(
            lambda: completed_runs(mongo_db, Trigger.SCHEDULED, AFTER_LAST_RUN),
            lambda runs: len(runs) >= 2,
            what="two runs of the interval from its last run",
        )

        api = await stack.enter_async_context(
            running_api(api_settings(as_user(settings, "api")), endpoints)
        )
        async with client(api) as http:
            status = await http.get("/api/v1/scheduler/status")
        assert status.status_code == 200, status.text
        assert status.json()["leader"] == ticker.ticker_id, status.json()
        assert status.json()["leader_since"] is not None
        async with client(api) as http:
            preview = await http.get(f"/scheduled-jobs/{AFTER_LAST_RUN.scheduled_job_id}/preview")
        assert preview.status_code == 200, preview.text
        assert len(preview.json()["next_fire_times"]) == 1, preview.json()
        async with client(api) as http:
            answer = await http.post(
                "/scrape/trigger", json={"job_id": EVERY_SECOND.scheduled_job_id}
            )
        assert answer.status_code == 200, answer.text
        await eventually(
            lambda: completed_runs(mongo_db, Trigger.TRIGGERED), what="the API's trigger recorded"
        )
        async with client(api) as http:
            cancel = await http.post(f"/api/v1/jobs/{scheduled[0]['job_id']}/cancel", json={})
        assert cancel.status_code == 200, cancel.text
        async with nats_client(nats_server.url, as_user(settings, "cli")) as cli:
            paused = await cli.request(
                "natscron.api.schedules.pause",
                json.dumps({"scheduled_job_id": EVERY_SECOND.scheduled_job_id}).encode(),
                timeout=10,
            )
        assert json.loads(paused.data).get("outcome") == "paused", paused.data
        await recorder.stop()  # what it would record, the API reads from EVENTS
        await _api_reads_a_job_mongodb_lacks_from_events(nats_server.url, settings, api)
        await _api_cannot_read_the_lease(nats_server.url, settings)
    refused = violations(nats_server)
    assert any("KV_ticker_leader" in line for line in refused), refused
    others = [line for line in refused if "KV_ticker_leader" not in line]
    assert others == [], "a service lacks a permission its code uses"


async def completed_runs(
    db: AsyncDatabase[Document], trigger: Trigger, spec: ScheduledJob = EVERY_SECOND
) -> list[Document]:
    query = {
        "scheduled_job_id": spec.scheduled_job_id,
        "status": JobStatus.COMPLETED,
        "trigger": trigger,
    }
    return await db.jobs.find(query).to_list()


async def _api_reads_a_job_mongodb_lacks_from_events(
    url: str, settings: Settings, api: ApiService
) -> None:
    """A job the ticker announced and no recorder wrote: `jobs get` answers from EVENTS."""
    request = RunRequest(
        job_id="secured-live-job",
        trigger=Trigger.ADHOC,
        priority=Priority.IMMEDIATE,
        created_at=datetime.now(UTC),
        scraper="noop",
    )
    event = JobEvent(job=request, status=JobStatus.PENDING, at=request.created_at)
    async with nats_client(url, as_user(settings, "ticker")) as ticker:
        subject = names.job_event_subject(request.job_id)
        await publish(ticker.jetstream(), subject, event, event.msg_id)
    async with client(api) as http:
        answer = await http.get(f"/api/v1/executions/{request.job_id}")
    assert answer.status_code == 200, answer.text
    assert (answer.json()["source"], answer.json()["status"]) == ("events", "pending")


async def _api_cannot_read_the_lease(url: str, settings: Settings) -> None:
    """It can read schedules, and the lease's bucket exists, but its key is refused."""
    errors: list[Exception] = []
    api = await connected(url, settings, "api", errors)
    try:
        js = api.jetstream(timeout=DENIED_WITHIN_SECONDS)
        spec = await (await js.key_value(names.KV_SCHEDULED_JOBS)).get(
            EVERY_SECOND.scheduled_job_id
        )
        assert spec.value is not None
        lease = await js.key_value(names.KV_TICKER_LEADER)
        with pytest.raises(nats.errors.TimeoutError):
            await lease.get(names.LEADER_KEY)
    finally:
        await api.close()
    assert any("permissions violation" in str(error) for error in errors), errors
