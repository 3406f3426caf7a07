"""`explain` of a chained schedule on a running stack (ticker on a manual clock, a runner of
`Gate` runs, the recorder, the API over HTTP, real servers): the chained run is listed with
the parent run it ran after, and a parent's run that started none (it failed, the child runs
after successes; the child was paused) is listed among the other decisions with its why."""

from datetime import timedelta
from typing import Any

import httpx
import pytest
from nats.aio.client import Client
from pymongo.asynchronous.database import AsyncDatabase

from natscron_recorder import RecorderService
from natscron_shared.contract.storage import Document
from natscron_shared.nats.schedule_bucket import pause
from natscron_shared.runtime.endpoints import Endpoints
from natscron_shared.runtime.settings import Settings
from tests.conftest import StartTicker
from tests.system.test_explain import final_runs
from tests.ticker.test_chains import SLOTS, chained_stack, child, decided, parent, run_of
from tests.ticker.test_last_run import runner_on  # noqa: F401 (a fixture)
from tests.waiting import eventually

pytestmark = pytest.mark.integration


async def chain_decisions(
    db: AsyncDatabase[Document], scheduled_job_id: str, count: int
) -> list[Document]:
    async def found() -> list[Document]:
        query = {"scheduled_job_id": scheduled_job_id, "kind": {"$regex": "^chain_"}}
        return await db.decisions.find(query).sort("at", 1).to_list()

    return await eventually(
        found,
        lambda got: len(got) >= count,
        what=f"{count} chain decisions about {scheduled_job_id}",
    )


async def test_explain_shows_a_chained_run_with_its_parent_and_the_finishes_that_made_none(
    settings: Settings,
    endpoints: Endpoints,
    start_ticker: StartTicker,
    runner_on: Any,  # noqa: F811
    nc: Client,
    mongo_db: AsyncDatabase[Document],
    http: httpx.AsyncClient,
) -> None:
    recorder = RecorderService(settings, endpoints)
    await recorder.start()
    try:
        ticker, clock, gate = await chained_stack(
            start_ticker, runner_on, nc, parent("a"), child("b", ("a", "success"))
        )
        await clock.move_to(SLOTS[0])  # a's first run succeeds: b runs after it
        await gate.until_started(1)
        gate.end(run_of("a", 0), ok=True)
        await decided(ticker, 1)
        await clock.move_to(SLOTS[1])  # a's second run fails: b holds
        await gate.until_started(2)
        gate.end(run_of("a", 1), ok=False)
        await decided(ticker, 2)
        await pause(await nc.jetstream().key_value("scheduled_jobs"), ["b"], "upgrade", SLOTS[1])

        async def paused() -> bool:
            spec = ticker.book.get("b")
            return spec is not None and spec.status.value == "paused"

        await eventually(paused, what="b paused in the book")
        await clock.move_to(SLOTS[2])  # a's third run succeeds: b's run is dropped
        await gate.until_started(3)
        gate.end(run_of("a", 2), ok=True)
        await decided(ticker, 3)
        (chained,) = await final_runs(mongo_db, "b", 1)
        fired, held, dropped = await chain_decisions(mongo_db, "b", 3)

        window = {"from": (SLOTS[0] - timedelta(minutes=1)).isoformat(),
                  "to": (SLOTS[2] + timedelta(minutes=1)).isoformat()}  # fmt: skip
        response = await http.get("/scheduled-jobs/b/explain", params=window)
    finally:
        await recorder.stop()
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["slots"] == [] and body["schedule"] is None

    (run,) = body["other_runs"]
    assert (run["job_id"], run["trigger"]) == (chained["job_id"], "chain")
    assert run["why"] == f"chained from job {run_of('a', 0)}"
    assert fired["kind"] == "chain_fired" and fired["job_id"] == chained["job_id"]
    assert fired["cause_job_id"] == run_of("a", 0)

    assert [d["kind"] for d in body["other_decisions"]] == ["chain_held", "chain_dropped"]
    why_held, why_dropped = body["other_decisions"]
    assert (held["kind"], why_held["cause_job_id"]) == ("chain_held", run_of("a", 1))
    assert why_held["why"] == (
        f"job {run_of('a', 1)} ended and started no chained run:"
        " a's run ended failed; b runs after its success"
    )
    assert (dropped["kind"], why_dropped["cause_job_id"]) == ("chain_dropped", run_of("a", 2))
    assert why_dropped["job_id"] == dropped["job_id"] is not None
    assert why_dropped["why"] == (
        f"job {run_of('a', 2)} ended; the chained run {dropped['job_id']} was dropped:"
        " b is paused (upgrade): its chained run is dropped"
    )
