"""Provisioning is a step: `natscron provision` creates and updates, reports what it
changed and changes nothing the second time; services only check, and fail clearly."""

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from nats.aio.client import Client
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    RetentionPolicy,
    StreamConfig,
    SubjectTransform,
)

from natscron.provisioning.provision import Action, ProvisioningError, provision
from natscron_recorder import RecorderService
from natscron_runner import RunnerService
from natscron_shared.contract import names
from natscron_shared.contract.enums import Priority
from natscron_shared.contract.pools import DEFAULT_POOL
from natscron_shared.nats.jetstream_check import NotProvisionedError
from natscron_shared.nats.jetstream_layout import (
    RETRIES_AS_RUNS,
    RUNNER_ACK_WAIT_SECONDS,
    jetstream_layout,
)
from natscron_shared.runtime.endpoints import Endpoints
from natscron_shared.runtime.lifecycle import Service
from natscron_shared.runtime.settings import Settings
from natscron_ticker import TickerService
from tests.servers import Server, with_database

pytestmark = pytest.mark.integration

POOL = DEFAULT_POOL
MSG_ID_1, MSG_ID_2, MSG_ID_3 = ({"Nats-Msg-Id": f"job-{n}"} for n in (1, 2, 3))


@pytest.fixture
async def bare_nc(bare_nats_server: Server) -> AsyncIterator[Client]:
    client = Client()
    await client.connect(bare_nats_server.url)
    yield client
    await client.close()


async def test_provisioning_creates_then_changes_nothing(bare_nc: Client) -> None:
    js = bare_nc.jetstream()
    layout = jetstream_layout(1, 2.0)
    first = await provision(js, layout)
    assert {change.action for change in first} == {Action.CREATED}
    assert {f"{c.kind} {c.name}" for c in first} >= {
        "stream JOBS",
        "bucket ticker_leader",
        "consumer JOBS/runner-default-immediate",
        "consumer EVENTS/recorder-events",
    }
    second = await provision(js, layout)
    assert [str(change) for change in second if change.action is not Action.UNCHANGED] == []
    assert len(second) == len(first)


async def test_provisioning_updates_what_drifted_and_says_how(bare_nc: Client) -> None:
    js = bare_nc.jetstream()
    await provision(js, jetstream_layout(1, 2.0))
    drifted = (await js.consumer_info(names.STREAM_JOBS, "runner-default-normal")).config
    drifted.max_ack_pending = 7
    await js.add_consumer(names.STREAM_JOBS, drifted)
    changes = await provision(js, jetstream_layout(1, 5.0))
    updated = {str(c) for c in changes if c.action is Action.UPDATED}
    assert updated == {
        "updated   bucket ticker_leader: max_age 2.0 -> 5.0, duplicate_window 2.0 -> 5.0",
        "updated   consumer JOBS/runner-default-normal: max_ack_pending 7 -> 10000",
    }
    assert (await js.stream_info("KV_ticker_leader")).config.max_age == 5.0


async def test_provisioning_shortens_the_runners_ack_wait_of_an_older_layout(
    bare_nc: Client,
) -> None:
    js = bare_nc.jetstream()
    await provision(js, jetstream_layout(1, 2.0, runner_ack_wait_seconds=60.0))
    changes = await provision(js, jetstream_layout(1, 2.0))
    updated = {str(c) for c in changes if c.action is not Action.UNCHANGED}
    assert updated == {
        f"updated   consumer JOBS/runner-default-{lane}: ack_wait 60.0 -> 10.0"
        for lane in ("immediate", "normal")
    }
    for lane in ("immediate", "normal"):
        info = await js.consumer_info(names.STREAM_JOBS, f"runner-default-{lane}")
        assert info.config.ack_wait == RUNNER_ACK_WAIT_SECONDS == 10.0


async def test_provisioning_adds_the_retry_subjects_to_an_older_jobs_stream(
    bare_nc: Client,
) -> None:
    """JOBS as it was before retries had subjects of their own: provisioning adds them (and
    the pools') and the transform that stores them as run requests, and run requests stay
    as they are."""
    js = bare_nc.jetstream()
    layout = jetstream_layout(1, 2.0)
    older = layout.streams[0].evolve(
        subjects=[names.legacy_run_subject(p) for p in Priority], subject_transform=None
    )
    await js.add_stream(older)
    await js.publish(names.legacy_run_subject(Priority.NORMAL), b"queued", headers=MSG_ID_1)
    changes = await provision(js, layout)
    (updated,) = [c for c in changes if c.action is Action.UPDATED]
    assert updated.name == names.STREAM_JOBS and "subject_transform" in str(updated)
    config = (await js.stream_info(names.STREAM_JOBS)).config
    assert config.subject_transform == RETRIES_AS_RUNS

    await js.publish(names.retry_subject(POOL, Priority.IMMEDIATE), b"retry", headers=MSG_ID_2)
    await js.publish(names.run_subject(POOL, Priority.NORMAL), b"run", headers=MSG_ID_3)
    await js.publish(
        names.legacy_retry_subject(Priority.NORMAL), b"old retry", headers={"Nats-Msg-Id": "4"}
    )
    state = (await js.stream_info(names.STREAM_JOBS, subjects_filter=">")).state
    assert state.subjects == {
        names.legacy_run_subject(Priority.NORMAL): 2,
        names.run_subject(POOL, Priority.NORMAL): 1,
        names.run_subject(POOL, Priority.IMMEDIATE): 1,
    }
    retried = await js.get_last_msg(names.STREAM_JOBS, names.run_subject(POOL, Priority.IMMEDIATE))
    assert retried.data == b"retry"
    second = await provision(js, layout)
    assert [c for c in second if c.action is not Action.UNCHANGED] == []


async def test_provisioning_replaces_the_lanes_from_before_pools_and_keeps_their_jobs(
    bare_nc: Client,
) -> None:
    """An upgrade: the default pool's lanes take over from `runner-<lane>` (deleted, as a
    work queue allows no two consumers of one subject), with the jobs queued under the old
    subjects, the one an old runner had taken and not acked among them."""
    js = bare_nc.jetstream()
    layout = jetstream_layout(1, 2.0)
    await js.add_stream(
        layout.streams[0].evolve(
            subjects=[
                *(names.legacy_run_subject(p) for p in Priority),
                *(names.legacy_retry_subject(p) for p in Priority),
            ],
            subject_transform=SubjectTransform(src="jobs.retry.*", dest="jobs.run.{{wildcard(1)}}"),
        )
    )
    for priority in Priority:
        await js.add_consumer(
            names.STREAM_JOBS,
            ConsumerConfig(
                durable_name=names.legacy_runner_consumer(priority),
                filter_subject=names.legacy_run_subject(priority),
                ack_policy=AckPolicy.EXPLICIT,
            ),
        )
    for n in range(2):
        await js.publish(
            names.legacy_run_subject(Priority.NORMAL),
            f"old {n}".encode(),
            headers={"Nats-Msg-Id": f"old-{n}"},
        )
    old_runner = await js.pull_subscribe_bind(
        durable=names.legacy_runner_consumer(Priority.NORMAL), stream=names.STREAM_JOBS
    )
    (taken,) = await old_runner.fetch(1, timeout=5)
    assert taken.data == b"old 0"

    changes = await provision(js, layout)
    deleted = {str(c) for c in changes if c.action is Action.DELETED}
    assert deleted == {
        f"deleted   consumer JOBS/runner-{lane}: replaced by runner-default-{lane}, which reads"
        " its subject"
        for lane in ("immediate", "normal")
    }
    created = {c.name for c in changes if c.action is Action.CREATED}
    assert {"JOBS/runner-default-immediate", "JOBS/runner-default-normal"} <= created
    new_runner = await js.pull_subscribe_bind(
        durable=names.runner_consumer(POOL, Priority.NORMAL), stream=names.STREAM_JOBS
    )
    await js.publish(names.run_subject(POOL, Priority.NORMAL), b"new", headers=MSG_ID_3)
    delivered = await new_runner.fetch(3, timeout=5)
    assert sorted(msg.data for msg in delivered) == [b"new", b"old 0", b"old 1"]
    second = await provision(js, layout)
    assert [str(c) for c in second if c.action is not Action.UNCHANGED] == []


async def test_provisioning_creates_each_pools_lanes_once(bare_nc: Client) -> None:
    js = bare_nc.jetstream()
    pooled = jetstream_layout(1, 2.0, pools=("browser", "gpu", "browser"))
    first = await provision(js, pooled)
    runners = [c.name for c in first if c.name.startswith("JOBS/runner-")]
    assert runners == [
        f"JOBS/runner-{pool}-{lane}"
        for pool in ("default", "browser", "gpu")
        for lane in ("immediate", "normal")
    ]
    browser = await js.consumer_info(names.STREAM_JOBS, "runner-browser-normal")
    assert browser.config.filter_subject == "jobs.run.browser.normal"
    default = await js.consumer_info(names.STREAM_JOBS, "runner-default-normal")
    assert default.config.filter_subjects == ["jobs.run.default.normal", "jobs.run.normal"]
    again = await provision(js, pooled)
    assert [str(c) for c in again if c.action is not Action.UNCHANGED] == []
    fewer = await provision(js, jetstream_layout(1, 2.0))
    assert [str(c) for c in fewer if c.action is not Action.UNCHANGED] == []
    assert (await js.consumer_info(names.STREAM_JOBS, "runner-gpu-immediate")).num_pending == 0


async def test_a_setting_jetstream_cannot_change_is_reported_not_forced(bare_nc: Client) -> None:
    js = bare_nc.jetstream()
    await js.add_stream(
        StreamConfig(
            name=names.STREAM_ITEMS, subjects=["items.>"], retention=RetentionPolicy.INTEREST
        )
    )
    with pytest.raises(ProvisioningError, match="stream ITEMS exists with another retention"):
        await provision(js, jetstream_layout(1, 2.0))
    assert (await js.stream_info(names.STREAM_ITEMS)).config.retention == RetentionPolicy.INTEREST


@pytest.mark.parametrize("service_type", [TickerService, RunnerService, RecorderService])
async def test_services_refuse_an_unprovisioned_server_naming_what_is_missing(
    service_type: type[TickerService | RunnerService | RecorderService],
    bare_nats_server: Server,
    mongo_server: Server,
    tmp_path: Path,
) -> None:
    bare = Endpoints(nats_url=bare_nats_server.url, mongo_url=with_database(mongo_server.url, "t"))
    service: Service = service_type(Settings(data_dir=tmp_path), bare)
    with pytest.raises(NotProvisionedError, match=r"JetStream lacks what the \w+ needs: stream"):
        await service.start()
    assert not service.is_ready()
    client = Client()
    await client.connect(bare_nats_server.url)
    assert await client.jetstream().streams_info() == [], "a service created something"
    await client.close()


async def run_cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "natscron.cli.main",
        *args,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_a_service_process_fails_clearly_until_provisioned(
    bare_nats_server: Server, mongo_server: Server
) -> None:
    env = {
        "NATSCRON_NATS_URL": bare_nats_server.url,
        "NATSCRON_MONGO_URL": with_database(mongo_server.url, "t"),
    }
    code, _, err = await run_cli("runner", env=env)
    assert code == 1
    assert "consumer JOBS/runner-default-immediate" in err and "natscron provision" in err
    code, out, _ = await run_cli("provision", env=env)
    assert code == 0 and "created   stream JOBS" in out
    code, out, _ = await run_cli("provision", env=env)
    layout = jetstream_layout(1, 10.0)
    objects = len(layout.streams) + len(layout.buckets) + len(layout.consumers)
    assert code == 0 and out.strip().endswith(f"0 of {objects} changed")
    code, _, err = await run_cli("runner", env={**env, "NATSCRON_RUNNER_POOL": "browser"})
    assert code == 1
    assert "runner of pool 'browser' needs: consumer JOBS/runner-browser-immediate" in err
    assert "NATSCRON_RUNNER_POOLS naming 'browser'" in err
    code, out, _ = await run_cli("provision", env={**env, "NATSCRON_RUNNER_POOLS": "browser"})
    assert code == 0 and "created   consumer JOBS/runner-browser-normal" in out
