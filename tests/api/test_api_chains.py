"""The API refuses what would break a chain: a schedule running after one that does not
exist, a chain leading back to itself (create and replace), and the delete of a schedule
another one runs after (alone, or in bulk without that one)."""

from typing import Any

import httpx
import pytest
from nats.aio.client import Client

from natscron_shared.contract import names
from natscron_shared.nats.kv_watch import current_values
from tests.api.api_support import error_of, spec

pytestmark = pytest.mark.integration

UNCHECKED = {"unchecked": "true"}


def body(scheduled_job_id: str, *after: str, **fields: Any) -> dict[str, Any]:
    links = [{"scheduled_job_id": parent, "on": "completion"} for parent in after]
    if after:
        fields.setdefault("cron_expression", None)
    return spec(scheduled_job_id, after=links, **fields).model_dump(mode="json")


async def create(http: httpx.AsyncClient, scheduled_job_id: str, *after: str) -> httpx.Response:
    return await http.post("/scheduled-jobs", params=UNCHECKED, json=body(scheduled_job_id, *after))


async def test_create_and_replace_refuse_unknown_parents_and_cycles_naming_them(
    http: httpx.AsyncClient, nc: Client
) -> None:
    orphan = await create(http, "load", "extract")
    assert error_of(orphan) == (409, "invalid_chain")
    assert "load runs after extract, which is not a scheduled job" in orphan.text

    assert (await create(http, "extract")).status_code == 201
    assert (await create(http, "load", "extract")).status_code == 201
    assert (await create(http, "report", "load")).status_code == 201

    closing = await http.put(
        "/scheduled-jobs/extract", params=UNCHECKED, json=body("extract", "report")
    )
    assert error_of(closing) == (409, "invalid_chain")
    assert "a chain leads back to itself: extract -> load -> report -> extract" in closing.text
    own = {**body("load"), "after": [{"scheduled_job_id": "load"}], "cron_expression": None}
    itself = await http.put("/scheduled-jobs/load", params=UNCHECKED, json=own)
    assert error_of(itself) == (422, "invalid_request")
    assert "load -> load" in itself.text
    bucket = await nc.jetstream().key_value(names.KV_SCHEDULED_JOBS)
    assert sorted(await current_values(bucket)) == ["extract", "load", "report"]


async def test_deleting_a_parent_is_refused_until_its_children_go_with_it(
    http: httpx.AsyncClient, nc: Client
) -> None:
    for scheduled_job_id, after in (("a", ()), ("b", ()), ("c", ("a", "b"))):
        assert (await create(http, scheduled_job_id, *after)).status_code == 201

    refused = await http.delete("/scheduled-jobs/a")
    assert error_of(refused) == (409, "invalid_chain")
    assert "c runs after a: change or delete c first, or delete both" in refused.text
    bulk = await http.post("/scheduled-jobs/delete", json={"ids": ["a", "b"]})
    assert [(r["scheduled_job_id"], r["outcome"]) for r in bulk.json()["results"]] == [
        ("a", "refused"),
        ("b", "refused"),
    ]
    together = await http.post("/scheduled-jobs/delete", json={"ids": ["c", "a"]})
    assert together.json()["changed"] == 2
    bucket = await nc.jetstream().key_value(names.KV_SCHEDULED_JOBS)
    assert sorted(await current_values(bucket)) == ["b"]
