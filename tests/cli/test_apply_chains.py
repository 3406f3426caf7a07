"""`natscron apply` and chains, as a user runs it: a file whose chains lead back to
themselves, or name a schedule that exists nowhere, is refused whole, the chain named; a
prune that would leave a schedule running after a deleted one is refused too."""

import json
from pathlib import Path

import pytest
from nats.aio.client import Client

from natscron_shared.contract import names
from natscron_shared.nats.kv_watch import current_values
from natscron_shared.runtime.endpoints import Endpoints
from tests.cli.test_cli import cli_env, run_cli

pytestmark = pytest.mark.integration


def entry(scheduled_job_id: str, *after: str, cron: bool = False) -> str:
    lines = [f"- scheduled_job_id: {scheduled_job_id}", f"  name: {scheduled_job_id}"]
    lines.append("  scraper: noop")
    if cron:
        lines.append('  cron_expression: "0 2 * * *"')
    if after:
        lines.append("  after:")
        lines += [f"    - {{scheduled_job_id: {parent}, on: success}}" for parent in after]
    return "\n".join(lines) + "\n"


async def apply(path: Path, endpoints: Endpoints, *flags: str) -> tuple[int, str, str]:
    env = cli_env(NATSCRON_NATS_URL=endpoints.nats_url, NATSCRON_MONGO_URL=endpoints.mongo_url)
    return await run_cli("apply", "-f", str(path), "--unchecked", *flags, env=env)


async def stored_ids(nc: Client) -> list[str]:
    bucket = await nc.jetstream().key_value(names.KV_SCHEDULED_JOBS)
    return sorted(await current_values(bucket))


async def test_a_cycle_is_refused_naming_it_and_nothing_is_written(
    tmp_path: Path, endpoints: Endpoints, nc: Client
) -> None:
    path = tmp_path / "schedules.yaml"
    path.write_text(entry("a", "c", cron=True) + entry("b", "a") + entry("c", "b"))
    code, _, err = await apply(path, endpoints)
    assert code == 4, err
    assert f"{path}: a chain leads back to itself: a -> b -> c -> a" in err
    assert await stored_ids(nc) == []


async def test_an_unknown_parent_is_refused_and_a_known_one_accepted(
    tmp_path: Path, endpoints: Endpoints, nc: Client
) -> None:
    first = tmp_path / "first.yaml"
    first.write_text(entry("extract", cron=True))
    assert (await apply(first, endpoints))[0] == 0
    second = tmp_path / "second.yaml"
    second.write_text(entry("load", "extract", "transform"))
    code, _, err = await apply(second, endpoints)
    assert code == 4, err
    assert "load runs after transform, which is not a scheduled job" in err
    assert await stored_ids(nc) == ["extract"]

    second.write_text(entry("load", "extract"))
    code, out, err = await apply(second, endpoints)
    assert (code, err) == (0, "")
    bucket = await nc.jetstream().key_value(names.KV_SCHEDULED_JOBS)
    load = json.loads((await bucket.get("load")).value or b"")
    assert load["after"] == [{"scheduled_job_id": "extract", "on": "success"}]
    assert load["cron_expression"] is None


async def test_a_prune_that_would_orphan_a_child_is_refused(
    tmp_path: Path, endpoints: Endpoints, nc: Client
) -> None:
    both = tmp_path / "both.yaml"
    both.write_text(entry("extract", cron=True) + entry("load", "extract"))
    assert (await apply(both, endpoints))[0] == 0
    parent_gone = tmp_path / "load-only.yaml"
    parent_gone.write_text(entry("load", "extract"))
    code, _, err = await apply(parent_gone, endpoints, "--prune", "--yes")
    assert code == 4, err
    assert "load runs after extract: change or delete load first, or delete both" in err
    assert await stored_ids(nc) == ["extract", "load"]
