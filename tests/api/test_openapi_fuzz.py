"""The OpenAPI document says what the API accepts: schemathesis generates requests from
`/openapi.json`, valid ones and invalid ones, against a real API (and the ticker and runner
that answer triggers and cancels). No answer may be a server error or stray from its
schema, every invalid request must be refused, and valid ones accepted where a schema can
say what is valid.

Derandomized (the same requests every run) and bounded: `EXAMPLES` requests per operation and
mode, about 1,500 in all.
"""

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
)

from natscron_api import ApiService
from tests.api.api_support import WRITE_TOKEN, error_of, spec
from tests.conftest import StartRunner, StartTicker

pytestmark = pytest.mark.integration

EXAMPLES = 30
Operation = APIOperation[Any, Any, Any, Any]
CHECKS = [not_a_server_error, response_schema_conformance, negative_data_rejection]
VALID_IS_NOT_ENOUGH = {
    "POST /scheduled-jobs": "a spec's rules between fields (a cron range runs upwards, end_at"
    " after start_at, jitter under the period, a cron firing inside active_hours, intervals"
    " of at most 3660 days in all), and its scraper must be one a runner advertises",
    "PUT /scheduled-jobs/{scheduled_job_id}": "as POST, and the body names the path's id",
    "POST /scrape/trigger": "an ad-hoc run's scraper must be one a runner advertises",
    "POST /scheduled-jobs/{scheduled_job_id}/backfill": "the range runs forwards, in the past",
    "GET /scheduled-jobs/{scheduled_job_id}/explain": "the range runs forwards and holds at"
    " most 1,000 of the schedule's slots",
}
"""Operations whose valid requests the schema cannot tell from the ones refused: rules
between fields and the scraper catalogue (live state). For them positive_data_acceptance is
left out; the other checks hold."""

ENDLESS = {
    "/api/v1/events/runs": "a stream of server-sent events, which never ends while the client"
    " listens (tests/api/test_console_api.py reads it)"
}
"""Operations whose answers never end, which a fuzzer would wait on forever."""


def fuzz(url: str) -> list[str]:
    """Every operation in both modes; a failure per operation and mode, as text."""
    config = schemathesis.Config.from_dict(
        {"auth": {"openapi": {"bearer": {"bearer": WRITE_TOKEN}}}}
    )
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", config=config).exclude(
        path=list(ENDLESS)
    )
    failures = []
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            failures.append(f"an operation schemathesis cannot read: {result.err()}")
            continue
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                examples_of(operation, mode)()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # nothing to get wrong: no parameters
            except BaseException as failure:  # schemathesis's FailureGroup is a BaseException
                failures.append(f"{operation.label} ({mode.value}): {failure}")
    return failures


def examples_of(operation: Operation, mode: GenerationMode) -> Callable[[], None]:
    checks = list(CHECKS)
    if mode is GenerationMode.POSITIVE and operation.label not in VALID_IS_NOT_ENOUGH:
        checks.append(positive_data_acceptance)

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def examples(case: Case[Operation]) -> None:
        if mode is GenerationMode.POSITIVE:
            # A cursor is valid only as a page handed it out, which no schema can say.
            assume("cursor" not in (case.query or {}))
        case.call_and_validate(checks=checks)

    return examples


async def test_the_api_accepts_what_its_openapi_document_says(
    api: ApiService, start_ticker: StartTicker, start_runner: StartRunner
) -> None:
    await start_ticker()
    await start_runner()
    failures: list[Any] = await asyncio.to_thread(fuzz, api.url)
    assert failures == [], "\n\n".join(failures)


async def test_times_are_iso_text_and_the_document_says_the_rules_between_fields(
    http: httpx.AsyncClient,
) -> None:
    """The fuzzer sends query values as text, so a number where a date-time belongs is not
    one of its invalid requests: pydantic read `0.5` as 1970-01-01T00:00:00.5Z."""
    for query in ({"until": "0.5"}, {"since": "1700000000"}):
        answer = await http.get("/api/v1/executions", params=query)
        assert error_of(answer) == (422, "invalid_request")
        assert "ISO 8601" in answer.json()["error"]["message"]
    body = spec("x").model_dump(mode="json")
    for wrong in (
        {"cron_expression": None, "run_at": 1700000000},
        {"active_hours": {"start": 3600, "end": "20:00"}},
        {"active_hours": {"start": "08:00+02:00", "end": "20:00"}},
        {"timezone": "posix/Europe/Paris"},
    ):
        answer = await http.post("/scheduled-jobs?unchecked=true", json={**body, **wrong})
        assert error_of(answer) == (422, "invalid_request"), wrong

    document = (await http.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    exactly_one = schemas["ScheduledJob"]["oneOf"]
    assert [branch["required"] for branch in exactly_one] == [
        ["cron_expression"],
        ["interval"],
        ["interval_minutes"],
        ["run_at"],
        ["after"],
    ]
    assert [branch["required"] for branch in schemas["TriggerRequest"]["oneOf"]] == [
        ["scheduled_job_id"],
        ["job_id"],
        ["scraper"],
        ["retry_of"],
    ]
    assert "Europe/Paris" in schemas["ScheduledJob"]["properties"]["timezone"]["enum"]
