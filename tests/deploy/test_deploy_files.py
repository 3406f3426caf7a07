"""The deployment files (compose, Prometheus, alerts, Grafana) agree with the code."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from natscron.embedded import find_binary
from natscron.provisioning.nats_permissions import USERS
from natscron_shared.contract.pools import DEFAULT_POOL
from natscron_shared.runtime.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
DASHBOARDS = DEPLOY / "grafana" / "dashboards"
NATSCRON_SERVICES = {"ticker", "runner", "recorder", "api"}
NATS_CLIENTS = NATSCRON_SERVICES | {"provision"}
"""Compose services that connect to NATS, each as the NATS user of its own name."""
MONGO_CLIENTS = {"recorder", "api"}
COMPOSE_VARIABLE_RE = re.compile(r"\$\{([A-Z0-9_]+)")
NEEDED_SERVICES = NATSCRON_SERVICES | {"nats", "mongo", "provision", "prometheus", "grafana"}
PUBLISHERS = {"grafana", "api"}
METRIC_RE = re.compile(r"\bnatscron_[a-z0-9_]+")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def _compose_services() -> dict[str, dict[str, Any]]:
    services = _load(ROOT / "docker-compose.yml")["services"]
    assert isinstance(services, dict)
    return services


def _defined_metrics() -> set[str]:
    """Every metric name the code defines: string literals `"natscron_..."` in the sources."""
    names: set[str] = set()
    for folder in (ROOT / "services", ROOT / "shared"):
        for source in folder.rglob("*.py"):
            names.update(re.findall(r"[\"'](natscron_[a-z0-9_]+)[\"']", source.read_text()))
    return names


def _base_name(name: str, defined: set[str]) -> str:
    if name in defined:
        return name
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix) and name.removesuffix(suffix) in defined:
            return name.removesuffix(suffix)
    return name


def _alert_exprs() -> list[str]:
    return [str(rule["expr"]) for group in _load(ALERTS)["groups"] for rule in group["rules"]]


def _dashboard_exprs() -> list[str]:
    exprs: list[str] = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            exprs.extend(str(target["expr"]) for target in panel.get("targets", []))
    return exprs


def _environment(service: str) -> dict[str, str]:
    environment = _compose_services()[service].get("environment", {})
    assert isinstance(environment, dict), f"{service}: environment as a mapping"
    return {name: str(value) for name, value in environment.items()}


def test_each_natscron_service_connects_as_its_own_nats_user() -> None:
    users = {name: _environment(name).get("NATSCRON_NATS_USER") for name in NATS_CLIENTS}
    assert users == {name: name for name in NATS_CLIENTS}
    for name in NATS_CLIENTS:
        password = _environment(name)["NATSCRON_NATS_PASSWORD"]
        assert password.startswith(f"${{NATS_{name.upper()}_PASSWORD:?"), (name, password)


def test_nats_server_runs_the_generated_users_with_their_passwords() -> None:
    nats = _compose_services()["nats"]
    assert "./deploy/nats/auth.conf:/etc/nats/auth.conf:ro" in nats["volumes"]
    assert "./deploy/nats/nats.conf:/etc/nats/nats.conf:ro" in nats["volumes"]
    assert nats["command"] == ["-c", "/etc/nats/nats.conf"]
    assert "include ./auth.conf" in (DEPLOY / "nats" / "nats.conf").read_text()
    assert set(_environment("nats")) == {user.password_variable for user in USERS}


def test_nats_config_is_accepted_by_nats_server(tmp_path: Path) -> None:
    environment = {user.password_variable: f"pw-{user.name}" for user in USERS}
    result = subprocess.run(
        [find_binary("nats-server"), "-c", str(DEPLOY / "nats" / "nats.conf"), "-t"],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    missing = {**environment}
    missing.pop(USERS[0].password_variable)
    refused = subprocess.run(
        [find_binary("nats-server"), "-c", str(DEPLOY / "nats" / "nats.conf"), "-t"],
        env=missing,
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode != 0
    assert USERS[0].password_variable in refused.stderr


def test_mongodb_has_authentication_and_only_its_clients_get_a_url() -> None:
    assert "MONGO_INITDB_ROOT_PASSWORD" in _environment("mongo")
    assert "--keyFile" in _compose_services()["mongo"]["command"]
    with_url = {name for name in _compose_services() if "NATSCRON_MONGO_URL" in _environment(name)}
    assert with_url == MONGO_CLIENTS
    for name in MONGO_CLIENTS:
        assert _environment(name)["NATSCRON_MONGO_URL"].startswith("mongodb://natscron:${")


def test_env_example_lists_every_variable_compose_reads() -> None:
    used = set(COMPOSE_VARIABLE_RE.findall((ROOT / "docker-compose.yml").read_text()))
    example = (ROOT / ".env.example").read_text().splitlines()
    listed = {line.split("=", 1)[0] for line in example if line and not line.startswith("#")}
    assert used <= listed, f".env.example lacks {sorted(used - listed)}"


def test_compose_has_every_service() -> None:
    assert set(_compose_services()) >= NEEDED_SERVICES


def test_compose_runs_a_browser_runner_in_a_provisioned_pool() -> None:
    """Each runner service's pool (NATSCRON_RUNNER_POOL) is among those `provision` creates
    lanes for; the browser pool's runner comes from the image with Chromium."""
    runners = {
        name: Settings.model_validate(
            {"runner_pool": _environment(name).get("NATSCRON_RUNNER_POOL", DEFAULT_POOL)}
        ).runner_pool
        for name, service in _compose_services().items()
        if service.get("command") == ["runner"]
    }
    assert runners == {"runner": DEFAULT_POOL, "runner-browser": "browser"}
    pools = Settings.model_validate(
        {"runner_pools": _environment("provision")["NATSCRON_RUNNER_POOLS"]}
    ).runner_pools
    assert set(runners.values()) <= set(pools)
    browser = _compose_services()["runner-browser"]
    assert browser["build"]["target"] == "runner-browser"
    assert _environment("runner-browser")["NATSCRON_NATS_USER"] == "runner"


def test_only_grafana_and_api_publish_host_ports() -> None:
    publishing = {name for name, svc in _compose_services().items() if svc.get("ports")}
    assert publishing == PUBLISHERS


def test_long_running_services_restart() -> None:
    for name, svc in _compose_services().items():
        assert svc.get("restart"), f"{name} has no restart policy"


def test_grafana_mounts_provisioning_and_dashboards() -> None:
    volumes = " ".join(_compose_services()["grafana"]["volumes"])
    assert "./deploy/grafana/provisioning" in volumes
    assert "./deploy/grafana/dashboards" in volumes
    prometheus_volumes = " ".join(_compose_services()["prometheus"]["volumes"])
    assert "./deploy/prometheus/alerts.yml" in prometheus_volumes


def test_prometheus_scrapes_every_service_and_loads_rules() -> None:
    config = _load(PROMETHEUS)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) >= NATSCRON_SERVICES
    for name in NATSCRON_SERVICES:
        sd = jobs[name]["dns_sd_configs"][0]
        assert sd["names"] == [name]
        assert sd["port"] == 8080  # NATSCRON_HTTP_PORT in the Dockerfile
    assert "NATSCRON_HTTP_PORT=8080" in (ROOT / "Dockerfile").read_text()
    mounted = {
        volume.split(":")[1]: ROOT / volume.split(":")[0]
        for volume in _compose_services()["prometheus"]["volumes"]
        if volume.startswith("./")
    }
    for rule_file in config["rule_files"]:
        assert rule_file in mounted and mounted[rule_file].is_file()


def test_alerts_have_runbooks() -> None:
    rules = [rule for group in _load(ALERTS)["groups"] for rule in group["rules"]]
    assert len(rules) >= 6
    for rule in rules:
        assert rule["annotations"]["runbook"].strip(), rule["alert"]


@pytest.mark.parametrize("source", ["alerts", "dashboards"])
def test_metric_names_are_defined(source: str) -> None:
    defined = _defined_metrics()
    assert "natscron_ticker_leader" in defined
    exprs = _alert_exprs() if source == "alerts" else _dashboard_exprs()
    assert exprs
    used = {name for expr in exprs for name in METRIC_RE.findall(expr)}
    unknown = {name for name in used if _base_name(name, defined) not in defined}
    assert not unknown, f"{source} use undefined metrics: {sorted(unknown)}"


@pytest.mark.parametrize("source", ["alerts", "dashboards"])
def test_lag_per_lane_and_failures_per_schedule_are_watched(source: str) -> None:
    """Issue 11: a dashboard of consumer lag per lane (of each runner pool), an alert on it,
    and both for the failure rate of each scheduled job."""
    exprs = _alert_exprs() if source == "alerts" else _dashboard_exprs()
    assert any(
        "natscron_runner_consumer_pending" in expr and "by (pool, lane)" in expr for expr in exprs
    )
    assert any(
        "natscron_recorder_schedule_runs_total" in expr
        and 'status="failed"' in expr
        and "by (scheduled_job_id)" in expr
        for expr in exprs
    )


def test_dashboards_are_provisioned() -> None:
    provider = _load(DEPLOY / "grafana" / "provisioning" / "dashboards" / "natscron.yml")
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    datasource = _load(DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml")
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
    assert list(DASHBOARDS.glob("*.json"))


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_promtool_checks_rules() -> None:
    result = subprocess.run(
        ["promtool", "check", "rules", str(ALERTS)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_promtool_rule_unit_tests() -> None:
    result = subprocess.run(
        ["promtool", "test", "rules", "alerts_test.yml"],
        cwd=ALERTS.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
