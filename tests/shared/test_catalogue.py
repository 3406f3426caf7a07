"""The scraper catalogue (issue 9): runners advertise their scrapers and params schemas in
KV `scrapers`, entries expire when no live runner renews them, and `natscron apply` and
`jobs.trigger` refuse an unknown scraper or bad params before anything is written."""

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client
from nats.js.api import KeyValueConfig
from pydantic import ValidationError

from natscron_runner.advertise import describe_scrapers
from natscron_runner.scrapers import ENTRY_POINT_GROUP, ScrapeContext, ScraperRegistry
from natscron_runner.scrapers import registry as registry_module
from natscron_runner.scrapers.http_params import HttpParams
from natscron_runner.scrapers.noop import NoopParams
from natscron_shared.contract import names
from natscron_shared.contract.catalogue import (
    OPEN_PARAMS_SCHEMA,
    Catalogue,
    NoRunnersError,
    ParamsRejectedError,
    ScraperEntry,
    ScraperNotAdvertisedError,
    check_job,
)
from natscron_shared.contract.messages import ScrapedItem, TriggerRequest
from natscron_shared.contract.pools import DEFAULT_POOL
from natscron_shared.nats.scrapers_bucket import load_catalogue
from natscron_shared.runtime.endpoints import Endpoints
from tests.cli.test_cli import cli_env, run_cli
from tests.conftest import StartRunner, StartTicker
from tests.waiting import eventually

SHORT_TTL_SECONDS = 2.0
BUILTINS = ["browser", "cookie_scan", "crawl", "http", "noop"]
"""Every runner here has Chromium (`make test-deps`), so it offers the browser scrapers."""
HTTP_PARAMS = {
    "urls": ["https://example.test/list"],
    "item_selector": "article",
    "fields": {"id": "@data-id"},
    "key_field": "id",
}


class FixedScraper:
    """Yields one item, whatever its params."""

    async def scrape(
        self, params: dict[str, Any], context: ScrapeContext
    ) -> AsyncIterator[ScrapedItem]:
        yield ScrapedItem(key=f"fixed-{context.job_id}", data=params)


def broken_factory() -> FixedScraper:
    raise ImportError("a dependency is missing")


def builtin_catalogue() -> Catalogue:
    described = describe_scrapers(ScraperRegistry(load_plugins=False))
    now = datetime.now(UTC)
    return Catalogue(
        ScraperEntry(
            scraper=name,
            description=about.description,
            params_schema=about.params_schema,
            runner_id="r1",
            advertised_at=now,
        )
        for name, about in described.items()
    )


def rejection(scraper: str, params: dict[str, Any]) -> str:
    with pytest.raises((ScraperNotAdvertisedError, ParamsRejectedError)) as caught:
        check_job(builtin_catalogue(), scraper, params)
    return caught.value.detail


# --- the contract, without servers ---------------------------------------------------


def test_builtin_params_schemas_come_from_their_models_and_forbid_unknown_keys() -> None:
    described = describe_scrapers(ScraperRegistry(load_plugins=False))
    assert described["noop"].params_schema == NoopParams.model_json_schema()
    assert described["http"].params_schema == HttpParams.model_json_schema()
    for about in described.values():
        assert about.params_schema["additionalProperties"] is False
        assert about.description
    check_job(builtin_catalogue(), "http", HTTP_PARAMS)
    check_job(builtin_catalogue(), "noop", {"items": 3, "delay_seconds": 0.5})


def test_unknown_scraper_is_named_with_the_known_ones() -> None:
    assert (
        rejection("selenium", {})
        == "scraper: unknown scraper 'selenium'; known: browser, cookie_scan, crawl, http, noop"
    )
    assert "(did you mean 'http'?)" in rejection("htp", {})
    with pytest.raises(ScraperNotAdvertisedError) as caught:
        check_job(builtin_catalogue(), "selenium", {})
    assert caught.value.code == "unknown_scraper"


def test_bad_params_name_the_field_and_the_schemas_reason() -> None:
    misspelt = rejection("noop", {"itemz": 3})
    assert misspelt.startswith("params.itemz: unknown field; known: delay_seconds, ")
    assert misspelt.endswith(", items, metadata (did you mean 'items'?)")
    assert rejection("noop", {"items": "3"}) == "params.items: '3' is not of type 'integer'"
    assert rejection("noop", {"items": -1}) == "params.items: -1 is less than the minimum of 0"
    bad_url = rejection("http", {**HTTP_PARAMS, "urls": ["htp://x"]})
    assert bad_url == "params.urls[0]: 'htp://x' is not an http(s) URL"
    missing = rejection("http", {"urls": ["http://x"]})
    assert "params.item_selector: required" in missing and "params.key_field: required" in missing
    nullable = rejection("http", {**HTTP_PARAMS, "limit": "ten"})
    assert nullable == "params.limit: 'ten' is not of type 'integer' or 'null'"
    with pytest.raises(ParamsRejectedError) as caught:
        check_job(builtin_catalogue(), "noop", {"itemz": 3})
    assert caught.value.code == "invalid_params"
    assert [p.field for p in caught.value.problems] == ["params.itemz"]


def test_an_empty_catalogue_checks_nothing_and_says_no_runner_is_up() -> None:
    with pytest.raises(NoRunnersError, match="no runner is advertising scrapers"):
        check_job(Catalogue(), "noop", {})


def test_scrapers_without_a_params_model_or_that_fail_to_load(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plugins = [
        EntryPoint("broken", f"{__name__}:broken_factory", ENTRY_POINT_GROUP),
        EntryPoint("bad.name", f"{__name__}:FixedScraper", ENTRY_POINT_GROUP),
    ]
    monkeypatch.setattr(registry_module, "entry_points", lambda *, group: plugins)
    described = describe_scrapers(ScraperRegistry({"fixed": FixedScraper()}))
    assert sorted(described) == sorted(["fixed", *BUILTINS])
    assert described["fixed"].params_schema == OPEN_PARAMS_SCHEMA
    assert described["fixed"].description == "Yields one item, whatever its params."


def test_an_entry_with_an_invalid_schema_is_left_out() -> None:
    now = datetime.now(UTC)
    catalogue = Catalogue(
        [
            ScraperEntry(scraper="ok", runner_id="r", advertised_at=now),
            ScraperEntry(
                scraper="bad", params_schema={"type": 5}, runner_id="r", advertised_at=now
            ),
        ]
    )
    assert catalogue.names() == ["ok"]


def pooled_catalogue(*offers: tuple[str, str, dict[str, Any]]) -> Catalogue:
    """(pool, scraper, params schema) as the runners of each pool would advertise them."""
    now = datetime.now(UTC)
    return Catalogue(
        ScraperEntry(
            scraper=scraper,
            pool=pool,
            params_schema=schema,
            runner_id=f"r-{pool}",
            advertised_at=now,
        )
        for pool, scraper, schema in offers
    )


STRICT = {"type": "object", "additionalProperties": False}
OPEN = {"type": "object"}


def test_a_job_runs_in_the_pool_it_names_or_the_one_its_scraper_is_offered_in() -> None:
    catalogue = pooled_catalogue(
        ("default", "http", OPEN),
        ("browser", "http", OPEN),
        ("browser", "browser", OPEN),
        ("gpu", "ocr", OPEN),
        ("gpu2", "ocr", OPEN),
    )
    assert catalogue.pools() == ["browser", "default", "gpu", "gpu2"]
    assert check_job(catalogue, "http", {}) == "default", "the default pool first"
    assert check_job(catalogue, "http", {}, "browser") == "browser"
    assert check_job(catalogue, "browser", {}) == "browser", "the one pool that offers it"
    assert check_job(catalogue, "ocr", {}, "gpu2") == "gpu2"
    with pytest.raises(ScraperNotAdvertisedError) as caught:
        check_job(catalogue, "ocr", {})
    assert caught.value.detail == (
        "pool: scraper 'ocr' is offered by pools gpu, gpu2, none of them the default: name"
        " the one to run it in"
    )


def test_a_pool_that_does_not_offer_the_scraper_is_named() -> None:
    catalogue = pooled_catalogue(("default", "http", OPEN), ("default", "noop", OPEN))
    with pytest.raises(ScraperNotAdvertisedError) as caught:
        check_job(catalogue, "browser", {}, "browser")
    assert caught.value.code == "unknown_scraper"
    assert caught.value.detail == (
        "pool: no runner of pool 'browser' is up to run scraper 'browser' (pools up: default)"
    )
    with pytest.raises(ScraperNotAdvertisedError) as caught:
        check_job(catalogue, "htp", {}, "default")
    assert caught.value.detail == (
        "pool: pool 'default' does not offer scraper 'htp' (it offers: http, noop)"
        " (did you mean 'http'?)"
    )
    pooled = pooled_catalogue(("default", "http", OPEN), ("browser", "browser", OPEN))
    with pytest.raises(ScraperNotAdvertisedError) as caught:
        check_job(pooled, "browser", {}, "default")
    assert caught.value.detail == (
        "pool: pool 'default' does not offer scraper 'browser' (it offers: http); pools"
        " offering it: browser"
    )
    with pytest.raises(ScraperNotAdvertisedError) as caught:
        check_job(pooled, "selenium", {})
    assert caught.value.detail == (
        "scraper: unknown scraper 'selenium'; known: browser, http (in pools browser, default)"
    )


def test_params_are_checked_against_the_schema_of_the_chosen_pool() -> None:
    catalogue = pooled_catalogue(("default", "x", STRICT), ("big", "x", OPEN))
    assert check_job(catalogue, "x", {"more": 1}, "big") == "big"
    with pytest.raises(ParamsRejectedError, match="params.more: unknown field"):
        check_job(catalogue, "x", {"more": 1})


def test_an_entry_from_before_pools_is_the_default_pools() -> None:
    entry = ScraperEntry.model_validate_json(
        '{"scraper": "noop", "runner_id": "r", "advertised_at": "2026-01-01T00:00:00Z"}'
    )
    assert entry.pool == DEFAULT_POOL
    with pytest.raises(ValidationError):
        ScraperEntry.model_validate({**entry.model_dump(), "pool": "Not.A.Pool"})


def test_trigger_requests_are_checked_unless_they_say_unchecked() -> None:
    assert TriggerRequest(scraper="noop").unchecked is False
    assert TriggerRequest.model_validate({"scraper": "noop", "unchecked": True}).unchecked


# --- runners advertising, on a real nats-server ----------------------------------------


async def short_ttl_catalogue(nc: Client) -> None:
    """KV `scrapers` again, with a TTL short enough to watch entries expire."""
    js = nc.jetstream()
    await js.delete_key_value(names.KV_SCRAPERS)
    await js.create_key_value(
        KeyValueConfig(bucket=names.KV_SCRAPERS, history=1, ttl=SHORT_TTL_SECONDS)
    )


async def revision_of(nc: Client, scraper: str) -> int:
    key = names.scraper_key(DEFAULT_POOL, scraper)
    entry = await (await nc.jetstream().key_value(names.KV_SCRAPERS)).get(key)
    return int(entry.revision or 0)


@pytest.mark.integration
async def test_a_runner_advertises_its_scrapers_with_their_schemas(
    start_runner: StartRunner, nc: Client
) -> None:
    runner = await start_runner(runner_id="runner-a")
    catalogue = await load_catalogue(nc.jetstream())
    assert catalogue.names() == BUILTINS
    noop = catalogue.entry(DEFAULT_POOL, "noop")
    assert noop.runner_id == runner.runner_id == "runner-a"
    assert noop.params_schema == NoopParams.model_json_schema()
    assert catalogue.entry(DEFAULT_POOL, "http").params_schema["additionalProperties"] is False
    raw = await (await nc.jetstream().key_value(names.KV_SCRAPERS)).get("default.http")
    assert raw.value is not None and json.loads(raw.value)["scraper"] == "http"
    assert json.loads(raw.value)["pool"] == DEFAULT_POOL


@pytest.mark.integration
async def test_entries_live_while_a_runner_renews_them_and_expire_after(
    start_runner: StartRunner, nc: Client
) -> None:
    await short_ttl_catalogue(nc)
    plain = await start_runner(runner_id="plain")
    extra = await start_runner(
        runner_id="extra", scrapers=ScraperRegistry({"fixed": FixedScraper()}, load_plugins=False)
    )
    js = nc.jetstream()
    assert (await load_catalogue(js)).names() == sorted(["fixed", *BUILTINS])

    # Both renew every TTL/3; over more than a TTL every entry stays.
    first = await revision_of(nc, "fixed")

    async def still_there() -> int:
        assert (await load_catalogue(js)).names() == sorted(["fixed", *BUILTINS])
        return await revision_of(nc, "fixed") - first

    await eventually(still_there, lambda renewals: renewals >= 4, what="renewed past the TTL")

    # The only runner with `fixed` stops: it expires; the other keeps `http` and `noop`.
    await extra.stop()
    await eventually(
        lambda: load_catalogue(js),
        lambda catalogue: catalogue.names() == BUILTINS,
        what="'fixed' expired",
    )
    await eventually(
        lambda: load_catalogue(js),
        lambda catalogue: catalogue.entry(DEFAULT_POOL, "noop").runner_id == "plain",
        what="the live runner's entry",
    )
    await plain.stop()
    await eventually(lambda: load_catalogue(js), lambda c: not c, what="an empty catalogue")


# --- `natscron apply` -------------------------------------------------------------------

VALID = """
- scheduled_job_id: nightly
  name: Nightly
  cron_expression: "0 2 * * *"
  scraper: noop
  params: {items: 2}
"""
UNKNOWN_SCRAPER = (
    VALID
    + """
- scheduled_job_id: browser
  name: Browser
  cron_expression: "0 3 * * *"
  scraper: selenium
"""
)
BAD_PARAMS = (
    VALID
    + """
- scheduled_job_id: listings
  name: Listings
  interval: {hours: 1}
  scraper: http
  params:
    urls: ["htp://example.test"]
    item_selector: article
    fields: {id: "@data-id"}
    key_field: id
    max_page: 3
- scheduled_job_id: slow
  name: Slow
  interval: {hours: 1}
  scraper: noop
  params: {items: many}
"""
)


async def scheduled_keys(nc: Client) -> list[str]:
    """From the stream's subjects, not `KeyValue.keys()`: nats-py's watch can report the end
    of the values before the values themselves (see natscron_shared.nats.kv_watch)."""
    stream = f"KV_{names.KV_SCHEDULED_JOBS}"
    info = await nc.jetstream().stream_info(stream, subjects_filter=">")
    prefix = f"$KV.{names.KV_SCHEDULED_JOBS}."
    return sorted(subject.removeprefix(prefix) for subject in info.state.subjects or {})


@pytest.mark.integration
async def test_apply_refuses_unknown_scrapers_and_bad_params_writing_nothing(
    start_runner: StartRunner, tmp_path: Path, endpoints: Endpoints, nc: Client
) -> None:
    await start_runner()
    env = cli_env(NATSCRON_NATS_URL=endpoints.nats_url, NATSCRON_MONGO_URL=endpoints.mongo_url)
    path = tmp_path / "schedules.yaml"

    path.write_text(UNKNOWN_SCRAPER)
    code, _, err = await run_cli("apply", "-f", str(path), env=env)
    assert code == 2
    assert (
        f"{path}: scheduled_jobs[1].scraper (scheduled job 'browser'):"
        " unknown scraper 'selenium'; known: browser, cookie_scan, crawl, http, noop"
    ) in err
    assert await scheduled_keys(nc) == []

    path.write_text(BAD_PARAMS)
    code, _, err = await run_cli("apply", "-f", str(path), env=env)
    assert code == 2
    lines = err.strip().splitlines()
    assert f"{path}: scheduled_jobs[1].params.max_page (scheduled job 'listings'):" in lines[0]
    assert "unknown field" in lines[0] and "did you mean 'max_pages'?" in lines[0]
    assert lines[1].endswith(
        "scheduled_jobs[1].params.urls[0] (scheduled job 'listings'):"
        " 'htp://example.test' is not an http(s) URL"
    )
    assert lines[2].endswith(
        "scheduled_jobs[2].params.items (scheduled job 'slow'): 'many' is not of type 'integer'"
    )
    assert await scheduled_keys(nc) == []

    path.write_text(VALID)
    code, out, err = await run_cli("apply", "-f", str(path), env=env)
    assert (code, err) == (0, "")
    assert "applied 1 scheduled job(s): nightly" in out
    assert await scheduled_keys(nc) == ["nightly"]


@pytest.mark.integration
async def test_apply_with_no_runner_up_refuses_unless_unchecked(
    tmp_path: Path, endpoints: Endpoints, nc: Client
) -> None:
    env = cli_env(NATSCRON_NATS_URL=endpoints.nats_url, NATSCRON_MONGO_URL=endpoints.mongo_url)
    path = tmp_path / "schedules.yaml"
    path.write_text(UNKNOWN_SCRAPER)
    code, _, err = await run_cli("apply", "-f", str(path), env=env)
    assert code == 1
    assert "no runner is advertising scrapers" in err and "--unchecked" in err
    assert await scheduled_keys(nc) == []

    code, out, err = await run_cli("apply", "-f", str(path), "--unchecked", env=env)
    assert (code, err) == (0, "")
    assert await scheduled_keys(nc) == ["browser", "nightly"]


# --- `jobs.trigger` -------------------------------------------------------------------


async def trigger(nc: Client, body: dict[str, Any]) -> dict[str, Any]:
    reply = await nc.request(names.JOBS_TRIGGER, json.dumps(body).encode(), timeout=10)
    answer: dict[str, Any] = json.loads(reply.data)
    return answer


async def stored_run_requests(nc: Client) -> int:
    """Run requests JetStream ever stored (runners take them off the work queue)."""
    return int((await nc.jetstream().stream_info(names.STREAM_JOBS)).state.last_seq)


@pytest.mark.integration
async def test_adhoc_triggers_are_checked_against_the_catalogue(
    start_runner: StartRunner, start_ticker: StartTicker, nc: Client
) -> None:
    await start_runner()
    ticker = await start_ticker()

    unknown = (await trigger(nc, {"scraper": "selenium"}))["error"]
    assert unknown == {
        "code": "unknown_scraper",
        "message": "scraper: unknown scraper 'selenium';"
        " known: browser, cookie_scan, crawl, http, noop",
    }
    misspelt = (await trigger(nc, {"scraper": "noop", "params": {"itemz": 1}}))["error"]
    assert misspelt["code"] == "invalid_params"
    assert misspelt["message"].startswith("params.itemz: unknown field")
    wrong_type = (await trigger(nc, {"scraper": "noop", "params": {"items": "1"}}))["error"]
    assert wrong_type == {
        "code": "invalid_params",
        "message": "params.items: '1' is not of type 'integer'",
    }
    assert await stored_run_requests(nc) == 0

    accepted = await trigger(nc, {"scraper": "noop", "params": {"items": 1}})
    assert str(accepted["job_id"]).startswith("adhoc_")
    assert await stored_run_requests(nc) == 1

    def triggers(outcome: str) -> float:
        value = ticker.registry.get_sample_value(
            "natscron_requests_total", {"endpoint": names.JOBS_TRIGGER, "outcome": outcome}
        )
        return value or 0.0

    assert (triggers("unknown_scraper"), triggers("invalid_params"), triggers("ok")) == (
        1,
        2,
        1,
    )


@pytest.mark.integration
async def test_adhoc_trigger_with_no_runner_up_needs_unchecked(
    start_ticker: StartTicker, nc: Client
) -> None:
    await start_ticker()
    refused = (await trigger(nc, {"scraper": "selenium", "params": {"x": 1}}))["error"]
    assert refused["code"] == "no_runners"
    assert "no runner is advertising scrapers" in refused["message"]
    assert '"unchecked": true' in refused["message"]
    assert await stored_run_requests(nc) == 0

    accepted = await trigger(nc, {"scraper": "selenium", "params": {"x": 1}, "unchecked": True})
    assert str(accepted["job_id"]).startswith("adhoc_")
    assert await stored_run_requests(nc) == 1
