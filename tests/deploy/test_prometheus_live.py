"""A real Prometheus scrapes the four running services, loads deploy/prometheus/alerts.yml
and answers every PromQL expression of the Grafana dashboards with data.

The services run in-process on the test's real servers, each with its health server
(`/metrics`) on a port of its own, as `natscron <service>` serves them. One schedule
completes with items every second; another always fails and is auto-paused after two
failures, so the failure and auto-pause series exist too.
"""

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from nats.aio.client import Client

from natscron.embedded import free_port
from natscron_api import ApiService
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.nats.schedule_bucket import put_schedules
from natscron_shared.runtime.endpoints import Endpoints
from natscron_shared.runtime.lifecycle import Service, serve_health
from natscron_shared.runtime.settings import Settings
from tests.api.api_support import api_settings
from tests.deploy.test_deploy_files import ALERTS, _dashboard_exprs, _load
from tests.stack import running_stack
from tests.waiting import eventually

pytestmark = pytest.mark.integration

PROMETHEUS = shutil.which("prometheus")
DATA_WITHIN = 30.0
STOP_WITHIN = 10.0
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "1s",
    "$__range": "5m",
}
"""Grafana's built-in variables, with values a 1 s scrape interval makes meaningful."""
EXEMPT: dict[str, str] = {}
"""Dashboard expressions allowed to be empty here, each with the reason; none so far."""
AUTO_PAUSED = "sum(natscron_recorder_schedules_auto_paused_total) > 0"
"""Not a panel: the scenario's own check that the failing schedule was auto-paused, so
the auto-pause panel shows a real count, not a zero."""

COMPLETING = ScheduledJob(
    scheduled_job_id="prom-completes",
    name="Completes with items",
    cron_expression="* * * * * *",
    scraper="noop",
    params={"items": 2},
)
FAILING = ScheduledJob(
    scheduled_job_id="prom-fails",
    name="Always fails",
    cron_expression="* * * * * *",
    scraper="noop",
    params={"fail_attempts": 99},
    failure_threshold=2,
)


def promql(expr: str) -> str:
    """`expr` with Grafana's variables replaced; a variable left over is a test to update."""
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr!r}"
    return expr


def alert_names() -> set[str]:
    return {rule["alert"] for group in _load(ALERTS)["groups"] for rule in group["rules"]}


def deploy_jobs() -> set[str]:
    """The scrape jobs of the compose Prometheus (deploy/prometheus/prometheus.yml)."""
    return {job["job_name"] for job in _load(ALERTS.with_name("prometheus.yml"))["scrape_configs"]}


def prometheus_config(targets: dict[str, int]) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
            for job, port in targets.items()
        ],
    }


@asynccontextmanager
async def services_with_metrics(
    settings: Settings, endpoints: Endpoints
) -> AsyncIterator[dict[str, int]]:
    """Recorder, runner, ticker and API running, each with `/metrics` on its own port:
    the port by Prometheus job name (the service's name, as deploy/prometheus names them)."""
    async with AsyncExitStack() as stack:
        services: list[Service] = list(
            await stack.enter_async_context(running_stack(settings, endpoints))
        )
        api = ApiService(api_settings(settings), endpoints)
        await api.start()
        stack.push_async_callback(api.stop)
        ports: dict[str, int] = {}
        for service in [*services, api]:
            health = await serve_health(service, "127.0.0.1", 0)
            stack.push_async_callback(health.stop)
            ports[service.name] = health.port
        yield ports


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """(config file to write, base URL) for `running_prometheus`."""
    if PROMETHEUS is None:
        pytest.skip("no prometheus binary on PATH (Debian: apt-get install prometheus)")
    yield tmp_path / "prometheus.yml", f"http://127.0.0.1:{free_port()}"


@asynccontextmanager
async def running_prometheus(config: Path, url: str) -> AsyncIterator[httpx.AsyncClient]:
    assert PROMETHEUS is not None
    log = config.with_name("prometheus.log")
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={config.with_name('tsdb')}",
            f"--web.listen-address={url.removeprefix('http://')}",
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        async with httpx.AsyncClient(base_url=url, timeout=5) as http:

            async def ready() -> int | None:
                assert process.returncode is None, log.read_text()
                try:
                    return (await http.get("/-/ready")).status_code
                except httpx.TransportError:
                    return None

            await eventually(ready, lambda status: status == 200, what="Prometheus ready")
            yield http
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), STOP_WITHIN)


async def query(http: httpx.AsyncClient, expr: str) -> list[Any]:
    response = await http.get("/api/v1/query", params={"query": expr})
    body = response.json()
    assert body["status"] == "success", (expr, body)
    result: list[Any] = body["data"]["result"]
    return result


def test_grafana_variables_are_replaced() -> None:
    assert promql("rate(x[$__rate_interval])") == "rate(x[1m])"
    with pytest.raises(AssertionError, match="unknown Grafana variable"):
        promql("rate(x[$__unknown])")


async def test_prometheus_scrapes_the_services_and_fills_every_dashboard_panel(
    settings: Settings,
    endpoints: Endpoints,
    nc: Client,
    prometheus: tuple[Path, str],
) -> None:
    config, url = prometheus
    async with services_with_metrics(settings, endpoints) as ports:
        assert set(ports) == {"ticker", "runner", "recorder", "api"}
        # The browser pool's runners are runners too, with the same metrics.
        assert deploy_jobs() == {*ports, "runner-browser"}
        config.write_text(yaml.safe_dump(prometheus_config(ports)))
        async with running_prometheus(config, url) as http:
            rules = (await http.get("/api/v1/rules")).json()["data"]["groups"]
            loaded = {rule["name"] for group in rules for rule in group["rules"]}
            assert loaded >= alert_names(), sorted(alert_names() - loaded)

            await put_schedules(nc.jetstream(), [COMPLETING, FAILING])

            async def targets_up() -> list[Any]:
                return await query(http, "up == 1")

            await eventually(
                targets_up, lambda up: len(up) == len(ports), what="every target scraped up"
            )

            dashboard = _dashboard_exprs()
            assert set(EXEMPT) <= set(dashboard), "an exemption for an expression no panel has"
            exprs = [promql(expr) for expr in dashboard if expr not in EXEMPT]
            assert exprs
            exprs.append(AUTO_PAUSED)

            async def empty_exprs() -> list[str]:
                return [expr for expr in exprs if not await query(http, expr)]

            await eventually(
                empty_exprs, lambda empty: not empty, within=DATA_WITHIN, what="data in every panel"
            )
            rules = (await http.get("/api/v1/rules")).json()["data"]["groups"]
            broken = {
                rule["name"]: rule.get("lastError")
                for group in rules
                for rule in group["rules"]
                if rule["health"] != "ok"
            }
            assert not broken, broken
